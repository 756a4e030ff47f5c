"""The live event hub: summaries of live calls, recent events, bounded subscribers."""

from __future__ import annotations

import json

import pytest

from switchboard.live import LiveHub

pytestmark = pytest.mark.anyio


def test_call_events_keep_the_summary_of_live_calls() -> None:
    hub = LiveHub()
    hub.started("c1", {"from": "+1", "agent": "frontdesk"})
    hub.updated("c1", status="bridged", last_latency_ms=420.0)
    hub.updated("nope", status="ignored")  # not live: nothing published
    assert hub.snapshot() == [
        {
            "from": "+1",
            "agent": "frontdesk",
            "status": "bridged",
            "last_latency_ms": 420.0,
            "call_id": "c1",
        }
    ]
    hub.ended("c1", "caller_hangup")
    hub.ended("c1", "again")  # once only
    assert hub.snapshot() == []
    assert hub.recent("c1") == []


async def test_subscribers_get_events_in_order_filtered_by_call() -> None:
    hub = LiveHub()
    with hub.subscribe() as everyone, hub.subscribe("c2") as one:
        hub.started("c1", {})
        hub.started("c2", {})
        hub.publish("transcript", "c2", {"role": "caller", "text": "hi"})
        got = [await everyone.get(0.1) for _ in range(3)]
        assert [e.type for e in got if e] == ["call.started", "call.started", "transcript"]
        first = await one.get(0.1)
        assert first is not None and first.call_id == "c2" and first.type == "call.started"
        line = await one.get(0.1)
        assert line is not None and line.seq > first.seq
        assert await one.get(0.01) is None  # nothing more: a timeout, not a hang
        assert hub.subscribers == 2
    assert hub.subscribers == 0


async def test_a_slow_subscriber_loses_its_oldest_events_and_is_told_how_many() -> None:
    hub = LiveHub(queue_size=3)
    hub.started("c1", {})
    with hub.subscribe() as slow:
        for n in range(5):
            hub.publish("timeline", "c1", {"kind": f"k{n}"})
        assert slow.dropped == 2 and slow.pending() == 3
        first = await slow.get(0.1)
        assert first is not None and first.data["kind"] == "k2"


def test_recent_events_are_bounded_and_partials_pass_without_being_kept() -> None:
    hub = LiveHub(history=2)
    hub.started("c1", {})
    for n in range(3):
        hub.publish("timeline", "c1", {"kind": f"k{n}"})
    hub.publish("transcript.partial", "c1", {"role": "agent", "text": "Hel"})
    assert [e.data["kind"] for e in hub.recent("c1")] == ["k1", "k2"]


def test_an_event_is_one_server_sent_event() -> None:
    hub = LiveHub()
    event = hub.publish("transcript", "c1", {"text": "a\nb"})  # a newline stays in the JSON
    lines = event.sse().split("\n")
    assert lines[:2] == [f"id: {event.seq}", "event: transcript"]
    assert json.loads(lines[2].removeprefix("data: "))["data"] == {"text": "a\nb"}
    assert event.sse().endswith("\n\n")
