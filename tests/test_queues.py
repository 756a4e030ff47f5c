"""The live streams' dropping queue (switchboard/queues.py)."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.queues import DroppingQueue

pytestmark = pytest.mark.anyio


async def test_a_full_queue_drops_its_oldest_and_counts_it() -> None:
    queue: DroppingQueue[int] = DroppingQueue(3)
    for n in range(5):
        queue.put(n)
    assert queue.dropped == 2 and len(queue) == 3
    assert [await queue.get(0.1) for _ in range(3)] == [2, 3, 4]
    assert await queue.get(0.05) is None  # nothing came in time


async def test_a_reader_waits_for_the_next_item() -> None:
    queue: DroppingQueue[str] = DroppingQueue(2)
    asyncio.get_running_loop().call_later(0.05, queue.put, "late")
    assert await queue.get(2.0) == "late"


async def test_an_ended_queue_is_read_out_then_raises() -> None:
    queue: DroppingQueue[str] = DroppingQueue(4)
    queue.put("last")
    queue.end(ConnectionError("gone"))
    assert await queue.get() == "last"
    with pytest.raises(ConnectionError, match="gone"):
        await queue.get()
