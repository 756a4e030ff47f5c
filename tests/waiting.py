"""Waiting on conditions, never for a fixed time.

A test that sleeps "long enough" is slow when the machine is idle and flaky when it is busy.
Wait for what the test needs instead: an event, a message, or — where the thing observed only
exposes state (an emulator's counters, a store's rows) — a condition polled by
:func:`eventually`. Every limit is a multiple of ``UNIT`` (``SWITCHBOARD_TEST_UNIT``), so a slow
machine scales them all at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from tests.conftest import UNIT

__all__ = ["POLL_S", "eventually", "eventually_async", "printed"]

T = TypeVar("T")
#: how often a condition is re-checked: short, it only costs a function call
POLL_S = 0.005


async def eventually(
    check: Callable[[], T | None], *, limit_s: float = 5.0, what: str = "the condition"
) -> T:
    """Poll ``check`` until it returns a truthy value, which is returned.

    Raises:
        AssertionError: not true within ``limit_s * UNIT`` (naming ``what``).
    """
    deadline = time.monotonic() + limit_s * UNIT
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {limit_s * UNIT:.2f} s")
        await asyncio.sleep(POLL_S)
    return result


async def eventually_async(
    check: Callable[[], Awaitable[T | None]],
    *,
    limit_s: float = 5.0,
    what: str = "the condition",
    every_s: float = POLL_S,
) -> T:
    """:func:`eventually` for a check that must await (a database read, an HTTP request).

    ``every_s`` spaces out checks that cost more than a function call.
    """
    deadline = time.monotonic() + limit_s * UNIT
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {limit_s * UNIT:.2f} s")
        await asyncio.sleep(every_s)
    return result


async def printed(capsys: pytest.CaptureFixture[str], marker: str, *, limit_s: float = 5.0) -> str:
    """Everything printed to stdout so far, once it contains ``marker``."""
    seen: list[str] = []

    def check() -> str | None:
        seen.append(capsys.readouterr().out)
        text = "".join(seen)
        return text if marker in text else None

    return await eventually(check, limit_s=limit_s, what=f"{marker!r} printed")
