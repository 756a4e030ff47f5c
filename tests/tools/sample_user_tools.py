"""User tools loaded by import path in the tool registry tests."""

from __future__ import annotations

from switchboard.tools import ToolContext, tool


@tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its id."""
    return {"order_id": order_id, "status": "shipped"}


@tool(name="caller_number", timeout_s=2)
async def whoami(context: ToolContext) -> str | None:
    """The caller's phone number."""
    return context.caller


def plain_helper(text: str) -> str:
    """Not a tool until registered by path."""
    return text.upper()


NOT_CALLABLE = 3
