"""Built-in tools that act on the call through :class:`~switchboard.tools.context.CallControl`.

* ``end_call(goodbye)`` — the bridge speaks the goodbye, waits for the carrier's playout mark,
  then hangs up through the carrier's REST API.
* ``transfer_call(destination)`` — the carrier transfers the caller (Twilio ``<Dial>`` redirect,
  Telnyx ``transfer``), if the agent's dial plan allows ``destination`` (its ``directory`` and
  ``transfer_allow``); otherwise the model gets the refusal as the tool's error.

Agents enable them by name in ``tools:`` (``agents.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from switchboard.tools.context import ToolContext
from switchboard.tools.registry import ToolRegistry, tool

__all__ = ["BUILTIN_TOOLS", "builtin_registry", "end_call", "transfer_call"]

#: Seconds the goodbye may take to play before the invocation is abandoned.
CALL_CONTROL_TIMEOUT_S = 30.0


@tool(timeout_s=CALL_CONTROL_TIMEOUT_S)
async def end_call(
    context: ToolContext,
    goodbye: Annotated[
        str, Field(description="What to say to the caller before hanging up.")
    ] = "Goodbye!",
) -> str:
    """End the phone call, after saying goodbye, when the conversation is finished."""
    await context.control.hang_up(goodbye=goodbye)
    return "call ended"


@tool(timeout_s=CALL_CONTROL_TIMEOUT_S)
async def transfer_call(
    context: ToolContext,
    destination: Annotated[
        str,
        Field(
            description=(
                "Where to transfer: a name from your directory (such as 'billing'), or a phone "
                "number in E.164 form (+15551234567) or SIP URI you were given."
            ),
            min_length=3,
        ),
    ],
) -> str:
    """Transfer the caller to another phone number or SIP address."""
    await context.control.transfer(destination)
    return f"transferring to {destination}"


#: The built-in tool functions, by name.
BUILTIN_TOOLS: dict[str, Callable[..., Any]] = {
    "end_call": end_call,
    "transfer_call": transfer_call,
}


def builtin_registry() -> ToolRegistry:
    """A fresh registry holding every built-in tool (``end_call``, ``transfer_call``)."""
    return ToolRegistry(BUILTIN_TOOLS.values())
