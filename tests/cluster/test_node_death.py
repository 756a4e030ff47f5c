"""A node process killed outright (SIGKILL: no goodbye, no cleanup), seen by a node in another
process through Redis: its calls are marked lost within 10 s and its slots are freed."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import pytest

from switchboard.cluster import SlotRequest
from tests.cluster.nodes import NodeFactory, node_factory
from tests.conftest import UNIT
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

# The other node: joins, takes three calls and their slots, says "ready", then runs until killed.
CHILD = """
import asyncio, sys
from switchboard.cluster import CallEntry, Cluster, ClusterTiming, SlotRequest

async def main() -> None:
    url, prefix, unit = sys.argv[1], sys.argv[2], float(sys.argv[3])
    timing = ClusterTiming(heartbeat_s=0.1 * unit, node_ttl_s=0.6 * unit, sweep_s=0.1 * unit)
    node = Cluster.on_redis(url, node_id="child", timing=timing, prefix=prefix)
    await node.start()
    for i in range(3):
        await node.register_call(CallEntry(f"child-{i}", "child", "twilio", f"CA{i}"))
        admission = await node.acquire_slots(f"child-{i}", [SlotRequest("agent:support", 3)])
        assert admission.granted
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
async def redis_nodes() -> AsyncIterator[NodeFactory]:
    async with node_factory("redis") as factory:
        yield factory


async def test_a_killed_nodes_calls_are_marked_lost_and_its_slots_freed(
    redis_nodes: NodeFactory,
) -> None:
    watcher = redis_nodes("watcher")
    await watcher.start()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        redis_nodes.url,
        redis_nodes.prefix,
        str(UNIT),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(30 * UNIT):
            assert await child.stdout.readline() == b"ready\n"
        calls = await watcher.directory.list_calls()
        assert [(c.call_id, c.node_id, c.state) for c in calls] == [
            (f"child-{i}", "child", "starting") for i in range(3)
        ]
        requests = [SlotRequest("agent:support", 3)]
        assert not (await watcher.acquire_slots("watcher-1", requests)).granted
        assert "child" in {node.node_id for node in await watcher.directory.nodes()}

        child.kill()
        await child.wait()
        killed_at = time.monotonic()

        async def all_lost() -> bool:
            states = {c.state for c in await watcher.directory.list_calls(node_id="child")}
            return states == {"lost"}

        await eventually_async(all_lost, limit_s=10.0, what="the killed node's calls lost")
        assert time.monotonic() - killed_at < 10.0 * UNIT
        admission = await watcher.acquire_slots("watcher-1", requests)
        assert admission.granted
        assert await watcher.limits.count("agent:support") == 1
        assert "child" not in {node.node_id for node in await watcher.directory.nodes()}
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
