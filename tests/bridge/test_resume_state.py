"""What a resumed call carries over (bridge/resume_state.py): the note's format, and the sink
that keeps it up to date, read back on another node of an in-memory cluster."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.bridge.core import BridgeCore
from switchboard.bridge.resume_state import (
    CarriedState,
    StateNoteSink,
    carried_state,
    decode_state,
    encode_state,
)
from switchboard.bridge.sink import MemorySink
from switchboard.cluster import MemoryHub
from switchboard.cluster.facade import Cluster
from switchboard.tools import ToolContext, ToolResult

pytestmark = pytest.mark.anyio


def test_the_note_round_trips_and_leaves_out_what_is_not_json() -> None:
    state = CarriedState(
        "gemini",
        4,
        {"collected_digits": "1234"},
        {"crm": {"id": 7, "tags": ["vip"]}, "client": object()},  # an object stays behind
    )
    back = decode_state(encode_state(state))
    assert back == CarriedState(
        "gemini", 4, {"collected_digits": "1234"}, {"crm": state.extras["crm"]}
    )


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "[]",
        '{"turn": 1}',
        '{"provider": 3}',
        '{"provider": "x", "turn": "2"}',
        '{"provider": "x", "turn": true}',
        '{"provider": "x", "variables": []}',
    ],
)
def test_a_malformed_note_is_ignored(raw: str) -> None:
    assert decode_state(raw) is None


def test_restoring_puts_the_tools_state_over_the_agents_defaults() -> None:
    context = ToolContext(call_id="c", variables={"plan": "basic", "lang": "en"}, extras={"a": 1})
    CarriedState("openai", 2, {"plan": "gold"}, {"b": 2}).restore(context)
    assert context.variables == {"plan": "gold", "lang": "en"}
    assert context.extras == {"a": 1, "b": 2}


def test_the_turn_counter_goes_on_from_the_carried_turn() -> None:
    core = BridgeCore()
    core.continue_turns(3)
    assert core.turn == 3
    core.continue_turns(1)  # never back
    assert core.turn == 3


async def test_the_sink_notes_each_change_for_another_node() -> None:
    hub = MemoryHub()
    here, there = Cluster.in_memory(node_id="a", hub=hub), Cluster.in_memory(node_id="b", hub=hub)
    context = ToolContext(call_id="call_1")
    inner = MemorySink()
    sink = StateNoteSink(inner, cluster=here, call_id="call_1", provider="openai", context=context)

    async def noted() -> CarriedState | None:
        for _ in range(100):  # the write is a task of its own: let it run
            await asyncio.sleep(0)
        return await carried_state(there, "call_1")

    assert await noted() is None  # nothing changed yet: nothing noted
    sink.turn_latency(1, 420.0)
    assert await noted() == CarriedState("openai", 1)
    context.variables["collected_digits"] = "42"  # a tool wrote it, then its result came
    sink.tool_call(ToolResult("collect_digits", ok=True, value="42"), 0.0)
    sink.timeline("provider.failover", 0.0, {"from": "openai", "to": "gemini"})
    sink.turn_latency(2, 380.0)  # several changes at once: the last state wins
    assert await noted() == CarriedState("gemini", 2, {"collected_digits": "42"})
    assert [t for t, _ in inner.latencies] == [1, 2]  # everything passed on
    assert [kind for kind, *_ in inner.timelines] == ["provider.failover"]
    assert [t.name for t in inner.tools] == ["collect_digits"]
