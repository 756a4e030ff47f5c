"""The shared state of a cluster, the same tests on both backends (memory and Redis).

Several nodes of one cluster run in this process: on one :class:`MemoryHub`, or on one Redis
key prefix. What only separate processes show (a node killed outright, Redis restarting) is in
``test_redis_failure.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from switchboard.cluster import (
    CallEntry,
    Cluster,
    ClusterTiming,
    ControlCommand,
    Handoff,
    SlotRequest,
)
from switchboard.config import load_settings
from tests.cluster.nodes import BACKENDS, FAST, NodeFactory, node_factory
from tests.conftest import UNIT
from tests.waiting import eventually, eventually_async

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[NodeFactory]:
    async with node_factory(str(request.param)) as factory:
        yield factory


def entry(node: Cluster, call_id: str, **fields: str) -> CallEntry:
    return CallEntry(
        call_id=call_id,
        node_id=node.node_id,
        carrier=fields.get("carrier", "telnyx"),
        carrier_call_id=fields.get("carrier_call_id", f"v3:{call_id}"),
        agent=fields.get("agent", "support"),
        provider="openai_realtime",
    )


# -- claims: Twilio replays, Telnyx event ids ------------------------------------------------------
async def test_concurrent_claims_of_one_key_have_exactly_one_winner(nodes: NodeFactory) -> None:
    a, b = nodes("node-a"), nodes("node-b")
    guards = [a.claims("twilio"), b.claims("twilio")]
    for round_ in range(5):
        key = f"payload-digest-{round_}"
        results = await asyncio.gather(*(guards[i % 2].claim(key, ttl_s=600) for i in range(60)))
        assert results.count(True) == 1
    # different keys do not interfere: each has its own first claimer
    results = await asyncio.gather(*(guards[i % 2].claim(f"k{i}", ttl_s=600) for i in range(40)))
    assert all(results)


async def test_a_released_claim_lets_a_retry_through_and_only_its_holder_releases(
    nodes: NodeFactory,
) -> None:
    a, b = nodes("node-a").claims("twilio"), nodes("node-b").claims("twilio")
    assert await a.claim("request", ttl_s=600)
    await b.release("request")  # not b's claim: it stays
    assert not await b.claim("request", ttl_s=600)
    await a.release("request")  # the work failed: Twilio's retry must pass
    assert await b.claim("request", ttl_s=600)
    assert not await a.claim("request", ttl_s=600)


async def test_a_claim_expires_after_its_ttl(nodes: NodeFactory) -> None:
    guard = nodes("node-a").claims("twilio")
    assert await guard.claim("short", ttl_s=0.2)
    assert not await guard.claim("short", ttl_s=0.2)
    await eventually_async(lambda: guard.claim("short", ttl_s=600), what="the claim expired")


async def test_event_ids_are_processed_once_cluster_wide(nodes: NodeFactory) -> None:
    a, b = nodes("node-a"), nodes("node-b")
    seen_a, seen_b = a.claims("telnyx-events"), b.claims("telnyx-events")
    event = "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"
    assert await seen_a.claim(event, ttl_s=3600)
    assert not await seen_b.claim(event, ttl_s=3600)  # Telnyx retried it to another node
    assert not await seen_a.claim(event, ttl_s=3600)
    # namespaces are separate: the same string is a different key for the Twilio guard
    assert await a.claims("twilio").claim(event, ttl_s=3600)


# -- the call directory and heartbeats -------------------------------------------------------------
async def test_the_directory_lists_every_call_with_its_node(nodes: NodeFactory) -> None:
    a, b = nodes("node-a"), nodes("node-b")
    await a.start()
    await b.start()
    await a.register_call(entry(a, "call-1", carrier_call_id="CA1", carrier="twilio"))
    await a.register_call(entry(a, "call-2"))
    await b.register_call(entry(b, "call-3", agent="sales"))
    listed = await b.directory.list_calls()
    assert [(c.call_id, c.node_id) for c in listed] == [
        ("call-1", "node-a"),
        ("call-2", "node-a"),
        ("call-3", "node-b"),
    ]
    assert [c.call_id for c in await a.directory.list_calls(node_id="node-b")] == ["call-3"]
    found = await b.directory.find_carrier_call("twilio", "CA1")
    assert found is not None
    assert (found.call_id, found.node_id, found.carrier) == ("call-1", "node-a", "twilio")
    await a.set_call_state("call-1", "live")
    fetched = await b.directory.get("call-1")
    assert fetched is not None and fetched.state == "live" and fetched.agent == "support"
    await a.finish_call("call-1")
    assert await b.directory.get("call-1") is None
    assert await b.directory.find_carrier_call("twilio", "CA1") is None
    assert not await b.directory.set_state("call-1", "live")
    assert {n.node_id for n in await a.directory.nodes()} == {"node-a", "node-b"}


async def test_calls_of_a_node_that_stopped_heart_beating_are_marked_lost(
    nodes: NodeFactory,
) -> None:
    watcher = nodes("node-b")
    await watcher.start()
    # node-a beats once and then goes silent (its process froze or died)
    silent = nodes("node-a")
    await silent.directory.heartbeat("node-a", ttl_s=FAST.node_ttl_s)
    last_beat = time.monotonic()
    await silent.register_call(entry(silent, "call-a1"))
    await silent.register_call(entry(silent, "call-a2"))
    await watcher.register_call(entry(watcher, "call-b1"))

    async def states() -> dict[str, str] | None:
        calls = {c.call_id: str(c.state) for c in await watcher.directory.list_calls()}
        return calls if calls.get("call-a1") == "lost" else None

    marked = await eventually_async(states, what="node-a's calls marked lost")
    elapsed = time.monotonic() - last_beat
    assert marked == {"call-a1": "lost", "call-a2": "lost", "call-b1": "starting"}
    assert elapsed < FAST.node_ttl_s + FAST.sweep_s + 2.0 * UNIT
    assert [n.node_id for n in await watcher.directory.nodes()] == ["node-b"]
    assert {c.state for c in await watcher.directory.list_calls(node_id="node-a")} == {"lost"}
    # a lost call takes no commands: nobody would act on them
    assert await watcher.send_command(ControlCommand("call-a1", "hangup")) is None


def test_default_timing_marks_calls_lost_within_ten_seconds() -> None:
    timing = ClusterTiming()
    assert timing.node_ttl_s + timing.sweep_s <= 8.0  # plus one round trip: well under 10 s
    with pytest.raises(ValueError, match="node_ttl_s"):
        ClusterTiming(heartbeat_s=2.0, node_ttl_s=1.0)


async def test_a_node_writes_its_calls_back_when_the_store_forgot_them(
    nodes: NodeFactory,
) -> None:
    node = nodes("node-a")
    await node.start()
    await node.register_call(entry(node, "call-1"))
    await node.set_call_state("call-1", "live")
    assert (await node.acquire_slots("call-1", [SlotRequest("agent:support", 1)])).granted
    await nodes.wipe()  # e.g. Redis restarted without persistence
    assert await node.directory.get("call-1") is None

    restored = await eventually_async(
        lambda: node.directory.get("call-1"), what="call-1 written back"
    )
    assert restored.state == "live" and restored.node_id == "node-a"
    await eventually_async(lambda: node.limits.count("agent:support"), what="slot restored")
    other = nodes("node-b")
    await other.directory.heartbeat("node-b", ttl_s=60)
    assert not (await other.acquire_slots("call-2", [SlotRequest("agent:support", 1)])).granted


# -- the control bus and the ordered handoff ------------------------------------------------------
async def test_commands_reach_the_node_holding_the_call_within_500_ms(
    nodes: NodeFactory,
) -> None:
    owner, sender = nodes("node-a"), nodes("node-b")
    received: list[tuple[ControlCommand, float]] = []

    async def on_command(command: ControlCommand) -> None:
        received.append((command, time.monotonic()))

    owner.on_command(on_command)
    await owner.start()
    await sender.start()
    await owner.register_call(entry(owner, "call-1"))
    latencies = []
    for i in range(10):
        command = ControlCommand("call-1", "transfer", destination=f"+1415555010{i}")
        sent_at = time.monotonic()
        assert await sender.send_command(command) == "node-a"

        def delivered(n: int = i + 1) -> tuple[ControlCommand, float] | None:
            return received[-1] if len(received) == n else None

        got, at = await eventually(delivered, what=f"command {i} delivered")
        assert got == ControlCommand(
            "call-1",
            "transfer",
            destination=f"+1415555010{i}",
            sender="node-b",
            id=command.id,
            issued_at=command.issued_at,
        )
        latencies.append(at - sent_at)
    assert max(latencies) < 0.5
    assert await sender.send_command(ControlCommand("no-such-call", "hangup")) is None
    # a call of the sending node itself is handled in place
    local: list[ControlCommand] = []

    async def on_local(command: ControlCommand) -> None:
        local.append(command)

    sender.on_command(on_local)
    await sender.register_call(entry(sender, "call-2"))
    assert await sender.send_command(ControlCommand("call-2", "hangup")) == "node-b"
    assert [c.action for c in local] == ["hangup"]


async def test_handoffs_arrive_in_order_per_call(nodes: NodeFactory) -> None:
    owner, receiver = nodes("node-a"), nodes("node-b")
    got: list[Handoff] = []

    async def on_handoff(handoff: Handoff) -> None:
        got.append(handoff)
        if len(got) % 7 == 0:
            await asyncio.sleep(0)  # a handler that yields must not reorder anything

    owner.on_handoff(on_handoff)
    await owner.start()
    calls = ["call-1", "call-2", "call-3"]
    for n in range(60):
        call_id = calls[n % 3]
        body = f'{{"event":"call.dtmf.received","n":{n}}}'
        await receiver.hand_off("node-a", Handoff(call_id, "telnyx.webhook", body))
    await eventually(lambda: len(got) == 60, what="60 handoffs received")
    assert [int(h.body.split('"n":')[1].rstrip("}")) for h in got] == list(range(60))
    for call_id in calls:
        mine = [h for h in got if h.call_id == call_id]
        assert len(mine) == 20 and all(h.sender == "node-b" for h in mine)
        assert all(h.kind == "telnyx.webhook" for h in mine)


async def test_a_failing_handler_does_not_stop_the_inbox(nodes: NodeFactory) -> None:
    owner = nodes("node-a")
    got: list[str] = []

    async def on_handoff(handoff: Handoff) -> None:
        if handoff.body == "boom":
            raise RuntimeError("handler bug")
        got.append(handoff.body)

    owner.on_handoff(on_handoff)
    await owner.start()
    sender = nodes("node-b")
    for body in ("one", "boom", "two"):
        await sender.hand_off("node-a", Handoff("call-1", "test", body))
    await eventually(lambda: got == ["one", "two"], what="the handoffs after the failure")


# -- limits ---------------------------------------------------------------------------------------
async def test_limits_hold_under_concurrency(nodes: NodeFactory) -> None:
    a, b = nodes("node-a"), nodes("node-b")
    await a.start()
    await b.start()
    requests = [SlotRequest("agent:support", 5)]
    answers = await asyncio.gather(
        *((a if i % 2 else b).acquire_slots(f"call-{i}", requests) for i in range(40))
    )
    assert sum(answer.granted for answer in answers) == 5
    assert {answer.full_scope for answer in answers if not answer.granted} == {"agent:support"}
    assert await a.limits.count("agent:support") == 5
    winner = next(i for i, answer in enumerate(answers) if answer.granted)
    holder = a if winner % 2 else b
    assert (await holder.acquire_slots(f"call-{winner}", requests)).granted  # idempotent
    assert await a.limits.count("agent:support") == 5
    await holder.finish_call(f"call-{winner}")
    assert await a.limits.count("agent:support") == 4
    assert (await a.acquire_slots("call-new", requests)).granted


async def test_slots_are_taken_all_or_none(nodes: NodeFactory) -> None:
    a = nodes("node-a")
    await a.start()
    both = [SlotRequest("agent:support", 10), SlotRequest("node:node-a", 2)]
    assert (await a.acquire_slots("call-1", both)).granted
    assert (await a.acquire_slots("call-2", both)).granted
    refused = await a.acquire_slots("call-3", both)
    assert not refused.granted and refused.full_scope == "node:node-a"
    assert await a.limits.count("agent:support") == 2  # the agent slot was not kept


async def test_a_call_taken_over_by_another_node_keeps_its_slot_all_along(
    nodes: NodeFactory,
) -> None:
    """Adoption (bridge/cluster_calls.py): the node the media reached takes the call's slot
    before the node that prepared it lets it go, so the slot is never free in between for
    another call of a full agent (the limit over-admitted when it was released first)."""
    a, b = nodes("node-a"), nodes("node-b")
    await a.start()
    await b.start()
    one = [SlotRequest("agent:limited", 1)]
    assert (await a.acquire_slots("call-1", one)).granted
    assert (await b.acquire_slots("call-1", one)).granted  # the same call: its slot moves
    assert await a.limits.count("agent:limited") == 1
    assert not (await a.acquire_slots("call-2", one)).granted
    await a.finish_call("call-1")  # a lets the call go: the slot is b's now, and stays
    assert await a.limits.count("agent:limited") == 1
    assert not (await b.acquire_slots("call-2", one)).granted
    await b.finish_call("call-1")
    assert (await a.acquire_slots("call-2", one)).granted


async def test_a_slot_only_finish_leaves_another_nodes_directory_entry(nodes: NodeFactory) -> None:
    """A node whose adoption failed gives the slot back; the call stays listed as the other
    node's."""
    a, b = nodes("node-a"), nodes("node-b")
    await a.start()
    await b.start()
    await a.register_call(entry(a, "call-1"))
    assert (await b.acquire_slots("call-1", [SlotRequest("agent:support", 2)])).granted
    await b.finish_call("call-1")
    listed = await b.directory.get("call-1")
    assert listed is not None and listed.node_id == "node-a"


async def test_a_late_finish_leaves_the_entry_another_node_registered_since(
    nodes: NodeFactory,
) -> None:
    """A node that prepared a call lets it go late (a busy node answering the adopter's
    release after the adopter gave up, and the call was taken again elsewhere): its finish must
    not take the new owner's directory entry with it (the call then vanished from
    /v1/sessions and was never hung up)."""
    a, b = nodes("node-a"), nodes("node-b")
    await a.start()
    await b.start()
    await a.register_call(entry(a, "call-1"))
    await b.register_call(entry(b, "call-1"))  # taken over by b meanwhile
    await b.set_call_state("call-1", "live")
    await a.finish_call("call-1")  # a's late let-go
    listed = await a.directory.get("call-1")
    assert listed is not None and (listed.node_id, listed.state) == ("node-b", "live")
    found = await a.directory.find_carrier_call(listed.carrier, listed.carrier_call_id)
    assert found is not None and found.node_id == "node-b"
    assert [e.call_id for e in await a.directory.list_calls()] == ["call-1"]
    await b.finish_call("call-1")  # its owner's finish removes it
    assert await a.directory.get("call-1") is None


async def test_a_dead_nodes_slots_are_freed(nodes: NodeFactory) -> None:
    survivor = nodes("node-b")
    await survivor.start()
    dying = nodes("node-a")
    await dying.directory.heartbeat("node-a", ttl_s=FAST.node_ttl_s)
    requests = [SlotRequest("agent:support", 3)]
    for i in range(3):
        assert (await dying.acquire_slots(f"a-{i}", requests)).granted
    assert not (await survivor.acquire_slots("b-1", requests)).granted
    # node-a never beats again: once its heartbeat lapses its slots stop counting
    await eventually_async(
        lambda: _granted(survivor, "b-1", requests), what="a slot freed by node-a's death"
    )
    assert await survivor.limits.count("agent:support") == 1


async def _granted(node: Cluster, call_id: str, requests: list[SlotRequest]) -> bool:
    return (await node.acquire_slots(call_id, requests)).granted


# -- construction, media key, health --------------------------------------------------------------
async def test_nodes_share_one_media_key_that_is_never_logged(
    nodes: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    a, b = nodes("node-a"), nodes("node-b")
    await a.start()
    await b.start()
    assert a.media_key == b.media_key and len(a.media_key) == 32
    assert a.media_key.hex() not in caplog.text
    configured = nodes("node-c", secret="s" * 32)
    await configured.start()
    assert configured.media_key == b"s" * 32
    assert await a.healthy()
    await a.ping()


async def test_from_settings_picks_the_backend() -> None:
    memory = Cluster.from_settings(load_settings(SWITCHBOARD_REDIS_URL=""), node_id="n1")
    assert memory.backend == "memory" and memory.node_id == "n1"
    redis = Cluster.from_settings(
        load_settings(SWITCHBOARD_REDIS_URL="redis://127.0.0.1:6379/0"), timing=FAST
    )
    assert redis.backend == "redis" and redis.node_id
    with pytest.raises(RuntimeError, match="start"):
        _ = redis.media_key
    await redis.aclose()
    with pytest.raises(ValueError, match="node id"):
        Cluster.in_memory(node_id="bad|id")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_notes_are_read_by_every_node_until_they_expire(backend: str) -> None:
    async with node_factory(backend) as nodes:
        a, b = nodes("node-a"), nodes("node-b")
        await a.put_note("placement:call-1", '{"agent": "sales"}', ttl_s=0.3 * UNIT)
        assert await b.get_note("placement:call-1") == '{"agent": "sales"}'
        assert await b.get_note("placement:call-2") is None
        await a.put_note("placement:call-1", "replaced", ttl_s=0.3 * UNIT)
        assert await b.get_note("placement:call-1") == "replaced"
        await asyncio.sleep(0.5 * UNIT)
        assert await b.get_note("placement:call-1") is None
