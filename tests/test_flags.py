"""switchboard.flags.Flag behaves as asyncio.Event where the call paths use it."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.flags import Flag

pytestmark = pytest.mark.anyio


async def test_wait_returns_at_once_while_set_and_after_the_next_set() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    flag.clear()  # cleared before the waiters run: they were woken all the same
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert not flag.is_set()
    flag.set()
    assert flag.is_set() and await flag.wait() is True
    assert "set" in repr(flag)


async def test_a_cancelled_wait_leaves_no_waiter_and_the_others_still_wake() -> None:
    flag = Flag()
    cancelled = asyncio.create_task(flag.wait())
    kept = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert "2 waiting" in repr(flag)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert "1 waiting" in repr(flag)
    flag.set()
    assert await kept is True
    assert "0 waiting" in repr(flag)


async def test_wait_for_times_out_and_cleans_up() -> None:
    flag = Flag()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.01)
    assert "0 waiting" in repr(flag)
    asyncio.get_running_loop().call_later(0.01, flag.set)
    assert await asyncio.wait_for(flag.wait(), 1.0) is True
