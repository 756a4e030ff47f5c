"""A node's Redis inbox: an entry it cannot read is dropped with a warning, the rest delivered."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from switchboard.cluster import Handoff
from tests.cluster.nodes import NodeFactory, node_factory
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
async def redis_nodes() -> AsyncIterator[NodeFactory]:
    async with node_factory("redis") as factory:
        yield factory


async def test_a_malformed_entry_is_dropped_and_the_next_delivered(
    redis_nodes: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from redis.asyncio import Redis

    owner = redis_nodes("node-a")
    got: list[str] = []

    async def on_handoff(handoff: Handoff) -> None:
        got.append(handoff.body)

    owner.on_handoff(on_handoff)
    await owner.start()
    raw = Redis.from_url(redis_nodes.url)
    try:
        stream = f"{{{redis_nodes.prefix}}}:inbox:node-a"
        await raw.xadd(stream, {"m": '{"type": "command", "action": "format-disk"}'})
        await raw.xadd(stream, {"other": "field"})
    finally:
        await raw.aclose()
    await redis_nodes("node-b").hand_off("node-a", Handoff("call-1", "test", "after"))
    await eventually(lambda: got == ["after"], what="the valid handoff delivered")
    dropped = [r for r in caplog.records if "malformed message" in r.getMessage()]
    assert len(dropped) == 2 and all(r.levelno == logging.WARNING for r in dropped)
