"""Redis going away and coming back, with a real ``redis-server`` the test stops and restarts.

While it is down every operation raises ClusterUnavailable (never a redis-py exception, never
the password); the nodes' background tasks survive; when it is back — empty, as it has no
persistence — the clients reconnect by themselves and each node writes its calls and slots back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from switchboard.agents import AgentBook
from switchboard.bridge.cluster_calls import ClusterAdmission
from switchboard.cluster import (
    CallEntry,
    Cluster,
    ClusterTiming,
    ControlCommand,
    Handoff,
    SlotRequest,
)
from switchboard.errors import ClusterUnavailable
from tests.cluster.nodes import FAST, RedisServer, require_redis
from tests.waiting import eventually, eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

SUPPORT = [SlotRequest("agent:support", 1)]


def call(node: Cluster, call_id: str) -> CallEntry:
    return CallEntry(call_id, node.node_id, "twilio", f"CA-{call_id}", agent="support")


async def test_an_outage_raises_one_error_type_and_the_nodes_recover(tmp_path: Path) -> None:
    require_redis(server=False)  # the server is the test's own
    password = f"pw-{uuid.uuid4().hex}"
    server = RedisServer(tmp_path, password=password)
    await server.start()
    owner = Cluster.on_redis(server.url, node_id="node-a", timing=FAST, prefix="outage")
    sender = Cluster.on_redis(server.url, node_id="node-b", timing=FAST, prefix="outage")
    late = Cluster.on_redis(server.url, node_id="node-c", timing=FAST, prefix="outage")
    received: list[ControlCommand] = []

    async def on_command(command: ControlCommand) -> None:
        received.append(command)

    owner.on_command(on_command)
    try:
        await owner.start()
        await sender.start()
        key = owner.media_key
        await owner.register_call(call(owner, "call-1"))
        await owner.set_call_state("call-1", "live")
        assert (await owner.acquire_slots("call-1", SUPPORT)).granted

        await server.stop()
        assert not await owner.healthy()
        operations: dict[str, Callable[[], Awaitable[object]]] = {
            "ping": owner.ping,
            "claim": lambda: owner.claims("twilio").claim("digest", ttl_s=600),
            "register": lambda: owner.register_call(call(owner, "call-2")),
            "acquire": lambda: owner.acquire_slots("call-3", SUPPORT),
            "list": sender.directory.list_calls,
            "command": lambda: sender.send_command(ControlCommand("call-1", "hangup")),
            "handoff": lambda: sender.hand_off("node-a", Handoff("call-1", "test", "{}")),
        }
        for name, operation in operations.items():
            with pytest.raises(ClusterUnavailable) as info:
                await operation()
            message = str(info.value)
            assert f"127.0.0.1:{server.port}/0" in message, name
            assert password not in message, name
            assert info.value.__cause__ is not None, name

        await server.start()  # empty: it has no persistence
        await eventually_async(owner.healthy, what="the client reconnected")
        # the owner writes back its call (state included), its slot, and the call it
        # registered during the outage
        restored = await eventually_async(
            lambda: sender.directory.get("call-1"), what="call-1 written back"
        )
        assert (restored.node_id, restored.state) == ("node-a", "live")
        await eventually_async(lambda: sender.directory.get("call-2"), what="call-2 written")
        await eventually_async(lambda: owner.limits.count("agent:support"), what="slot back")
        assert not (await sender.acquire_slots("call-9", SUPPORT)).granted
        # the owner's inbox reader is back: commands arrive again
        await eventually_async(
            lambda: sender.send_command(ControlCommand("call-1", "hangup")),
            what="node-a reachable again",
        )
        await eventually(lambda: received, what="a command delivered after the restart")
        assert received[0].sender == "node-b"
        # the media-token key survived the empty restart: the owner wrote it back (before
        # its calls, so it is there by now) and a node starting now gets the same one
        await late.start()
        assert late.media_key == owner.media_key == sender.media_key == key
        assert await owner.claims("twilio").claim("after", ttl_s=600)
    finally:
        for node in (owner, sender, late):
            await node.aclose()
        await server.stop()


async def test_a_node_cannot_start_without_redis(tmp_path: Path) -> None:
    require_redis(server=False)
    server = RedisServer(tmp_path, password="unused-password")  # a free port, never started
    node = Cluster.on_redis(server.url, node_id="node-a", timing=FAST)
    try:
        with pytest.raises(ClusterUnavailable, match="unavailable"):
            await node.start()
        assert not await node.healthy()
    finally:
        await node.aclose()


async def test_after_an_outage_a_node_is_healthy_only_once_its_calls_are_back(
    tmp_path: Path,
) -> None:
    """Redis back empty: the node writes its calls back within a fraction of a second, not a
    heartbeat later, and says it is healthy (``/readyz``) only once it has — before, another
    node answered 404 to a hang-up of a call ``/v1/sessions`` still listed (#16)."""
    require_redis(server=False)
    server = RedisServer(tmp_path, password=f"pw-{uuid.uuid4().hex}")
    await server.start()
    slow = ClusterTiming(heartbeat_s=2.0, node_ttl_s=6.0, sweep_s=2.0, receive_block_s=0.2)
    owner = Cluster.on_redis(server.url, node_id="node-a", timing=slow, prefix="restore")
    other = Cluster.on_redis(server.url, node_id="node-b", timing=slow, prefix="restore")
    try:
        await owner.start()
        await owner.register_call(call(owner, "call-1"))
        await server.stop()
        await asyncio.sleep(2.5)  # an outage the keeper sees (it beats every 2 s)
        await server.start()
        back = time.monotonic()
        while not await owner.healthy():
            assert time.monotonic() - back < 5.0, "never healthy again"
            await asyncio.sleep(0.02)
        listed = await other.directory.get("call-1")
        assert listed is not None and listed.node_id == "node-a"  # healthy: its calls are back
        assert time.monotonic() - back < 1.0  # not a heartbeat (2 s) later
    finally:
        await owner.aclose()
        await other.aclose()
        await server.stop()


async def test_a_node_started_before_redis_joins_once_it_answers(tmp_path: Path) -> None:
    """``start(retry=True)`` with Redis not up yet: the node runs, not joined and not healthy;
    once the server starts it joins by itself (heartbeat, media key, inbox) and is healthy."""
    require_redis(server=False)
    server = RedisServer(tmp_path, password=f"pw-{uuid.uuid4().hex}")  # not started yet
    node = Cluster.on_redis(server.url, node_id="node-late", timing=FAST, prefix="late")
    joined: list[bytes] = []
    try:
        with pytest.raises(ClusterUnavailable):
            await node.start()  # by default a node does not start blind
        await node.start(retry=True)
        node.when_joined(lambda: joined.append(node.media_key))
        assert (node.joining, await node.healthy(), joined) == (True, False, [])
        admission = ClusterAdmission(node, max_calls=0, agents=AgentBook([]))  # no limit at all
        assert await admission.admit("call-1", agent="support") == (
            "the cluster's shared state cannot be reached"  # no media key to sign with yet
        )
        with pytest.raises(RuntimeError):
            node.media_key  # noqa: B018  # unknown until it has joined
        await server.start()
        await eventually_async(node.healthy, limit_s=10, what="the node joined")
        assert (node.joining, joined) == (False, [node.media_key])
        observer = Cluster.on_redis(server.url, node_id="observer", timing=FAST, prefix="late")
        try:
            assert [n.node_id for n in await observer.directory.nodes()] == ["node-late"]
        finally:
            await observer.aclose()
    finally:
        await node.aclose()
        await server.stop()
