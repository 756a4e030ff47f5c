"""A slow user tool for the thinking-audio test (loaded by import path, as agents.yaml does)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field

from switchboard.tools import tool

#: How long ``check_stock`` takes (seconds).
DELAY_S = 2.5


@tool(timeout_s=10)
async def check_stock(item: Annotated[str, Field(description="The item.")]) -> str:
    """Whether an item is in stock (slowly)."""
    await asyncio.sleep(DELAY_S)
    return f"{item}: in stock"
