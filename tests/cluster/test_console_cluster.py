"""The operator console across nodes: another node's call in full on this node's event stream,
and listening to / talking on a call held by another node.

Two real apps (tests/cluster/apps.py) on loopback with the Twilio and OpenAI emulators, on both
backends (one in-memory hub; one Redis key prefix).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.app import cluster_live_out
from switchboard.app.cluster_live_out import CHANNEL, LiveForwarder
from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.live import LiveHub
from tests.cluster.apps import AppNode, two_apps
from tests.cluster.nodes import BACKENDS, node_factory
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, openai_env, twilio_env
from tests.e2e.test_events_stream import sse
from tests.e2e.test_operator import ws_url
from tests.operator_audio import frame_kinds, read_wav_pcm, rms, tone_pcm16
from tests.waiting import eventually, eventually_async

pytestmark = [pytest.mark.anyio]

SCRIPT = [{"caller": "hello there", "say": "Hi! How can I help you today?"}]
TALK = pcm16_to_ulaw(caller_pcm("hello there", gap_ms=60_000))


def bridged(node: AppNode) -> list[str]:
    return [c.call_id for c in node.manager.calls.values() if c.session is not None]


async def watched(node: AppNode) -> bool:
    """Another node listens on the live channel (its event stream has a reader)."""
    return await node.cluster.publish(CHANNEL, b'{"node":"probe","events":[]}') > 0


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_event_stream_shows_the_other_nodes_call_in_full(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with (
            two_apps(tmp_path, backend, env) as (a, b),
            b.http.stream("GET", "/v1/events") as response,
        ):
            events = sse(response)
            assert await anext(events) == ("snapshot", {"calls": []})
            await eventually_async(lambda: watched(a), limit_s=5, what="b subscribed")
            twilio.dial_in(f"{a.base}/twilio/voice", audio=TALK)
            seen: dict[str, list[dict[str, Any]]] = {}
            async with asyncio.timeout(20 * UNIT):
                async for kind, event in events:
                    seen.setdefault(kind, []).append(event)
                    said = [e["data"]["text"] for e in seen.get("transcript", [])]
                    latencies = [e for e in seen.get("call.updated", []) if "turns" in e["data"]]
                    if any("How can I help" in t for t in said) and latencies:
                        break
            (on_a,) = bridged(a)
            assert on_a not in b.manager.calls
            assert seen["call.started"][0]["data"]["node"] == "node-a"
            lines = [(e["data"]["role"], e["data"]["text"]) for e in seen["transcript"]]
            assert ("agent", "Hello, thanks for calling.") in lines
            assert ("caller", "hello there") in lines
            assert seen["turn.latency"][0]["data"]["latency_ms"] > 0
            # (partials are coalesced per flush: a line said within one may show none)
            kinds = {e["data"]["kind"] for e in seen["timeline"]}
            assert "call.started" in kinds, kinds
            # b's summary of a's call carries its latency (and its cost, when a prices it)
            mine = a.state.gateway.live.calls[on_a]
            theirs = b.state.gateway.live.calls[on_a]
            assert theirs["last_latency_ms"] == mine["last_latency_ms"]
            assert ("cost_usd" in theirs) == ("cost_usd" in mine)
            assert {e["call_id"] for k in seen for e in seen[k]} == {on_a}
            assert (await b.http.post(f"/v1/calls/{on_a}/hangup")).status_code == 200
            async with asyncio.timeout(15 * UNIT):
                async for kind, _event in events:
                    if kind == "call.ended":
                        break
            await twilio.wait_calls(timeout_s=20 * UNIT)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_chatty_call_is_bounded_and_an_unwatched_cluster_costs_nothing(
    backend: str,
) -> None:
    async with node_factory(backend) as factory:
        owner, watcher = factory("node-a"), factory("node-b")
        hub = LiveHub()
        forwarder = LiveForwarder(owner, hub, lambda call_id: call_id == "call_1")
        hub.started("call_1", {"status": "in-progress"})
        await _chatter(hub)
        await forwarder.flush()  # nobody listens: the forwarder stops ...
        async with watcher.subscribe(CHANNEL) as reader:
            await _chatter(hub)
            await forwarder.flush()
            assert await reader.get(0.1) is None
            await asyncio.sleep(cluster_live_out.IDLE_PROBE_S)  # ... for a second
            await _chatter(hub)
            await forwarder.flush()
            message = await reader.get(2.0)
        assert message is not None
        events = json.loads(message)["events"]
        assert json.loads(message)["node"] == "node-a"
        kinds = [e["type"] for e in events]
        # 1000 lines in a burst: the call's bucket lets at most CALL_BURST through
        assert 0 < kinds.count("transcript") <= cluster_live_out.CALL_BURST
        assert kinds.count("transcript.partial") == 1  # coalesced: the latest text only
        assert kinds.count("call.updated") == 1
        assert events[-1]["data"] == {"cost_usd": 999, "turns": 999}
        assert forwarder.dropped >= 1000 - cluster_live_out.CALL_BURST
        assert len(message) < 1000 * 100  # far below what the burst would have been


async def _chatter(hub: LiveHub) -> None:
    for i in range(1000):
        hub.publish("transcript", "call_1", {"role": "agent", "text": f"line {i}"})
        hub.publish("transcript.partial", "call_1", {"role": "caller", "text": f"p {i}"})
        hub.updated("call_1", cost_usd=i, turns=i)
        hub.publish("transcript", "call_2", {"role": "agent", "text": "another node's"})


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
async def test_listen_and_operator_sockets_on_the_node_not_holding_the_call(
    tmp_path: Path, backend: str
) -> None:
    heard = tmp_path / "heard.wav"
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with two_apps(tmp_path, backend, env) as (a, b):
            twilio.dial_in(f"{a.base}/twilio/voice", audio=TALK, out=heard)
            (on_a,) = await eventually(lambda: bridged(a), limit_s=15, what="a's call bridged")
            session = a.manager.calls[on_a].session
            assert session is not None
            with pytest.raises(InvalidStatus):  # the same token check as a local socket
                await connect(f"ws{b.base.removeprefix('http')}/v1/calls/{on_a}/listen")

            # Listen on b: both sides of a's call, mixed, non-silent (the greeting and answer).
            async with connect(ws_url(b.base, f"/v1/calls/{on_a}/listen")) as listen:
                started = json.loads(await listen.recv())
                assert started == {
                    "type": "started",
                    "format": "pcm16",
                    "sample_rate": 16000,
                    "node": "node-a",
                }
                assert session.operator.listeners == 1  # a's tap, for b's socket
                loudest = 0.0
                while loudest < 500:
                    frame = await asyncio.wait_for(listen.recv(), 5 * UNIT)
                    assert isinstance(frame, bytes) and 0 < len(frame) <= 1280
                    loudest = max(loudest, rms(frame))
            # b's socket gone: a stops publishing and closes its tap
            await eventually(lambda: session.operator.listeners == 0, limit_s=3, what="a's tap")

            # Take over through b; the operator's microphone on b reaches a's caller, and a
            # listener on b hears it in the mix.
            assert (await b.http.post(f"/v1/calls/{on_a}/takeover")).status_code == 200
            tone = tone_pcm16(1.5)
            async with (
                connect(ws_url(b.base, f"/v1/calls/{on_a}/operator")) as mic,
                connect(ws_url(b.base, f"/v1/calls/{on_a}/listen")) as listen,
            ):
                assert json.loads(await mic.recv())["node"] == "node-a"
                assert json.loads(await listen.recv())["node"] == "node-a"
                heard_at: list[float] = []

                async def hear_the_tone() -> None:
                    while not heard_at:
                        frame = await listen.recv()
                        if isinstance(frame, bytes) and "t" in frame_kinds(frame, 16000):
                            heard_at.append(time.monotonic())

                hearing = asyncio.create_task(hear_the_tone())
                sent_at = time.monotonic()
                for i in range(0, len(tone), 640):
                    await mic.send(tone[i : i + 640])
                    await asyncio.sleep(0.02)
                await asyncio.wait_for(hearing, 5 * UNIT)
                behind_s = heard_at[0] - sent_at
                print(f"relayed: the operator's first frame heard {behind_s * 1000:.0f} ms later")
                assert behind_s < 0.5 * UNIT
                caller_side = await asyncio.wait_for(mic.recv(), 5 * UNIT)  # the caller alone
                assert isinstance(caller_side, bytes)
            assert (await b.http.post(f"/v1/calls/{on_a}/handback")).status_code == 200

            # The call ends while b relays it: b's socket closes 1000.
            async with connect(ws_url(b.base, f"/v1/calls/{on_a}/listen")) as listen:
                assert json.loads(await listen.recv())["type"] == "started"
                assert (await b.http.post(f"/v1/calls/{on_a}/hangup")).status_code == 200
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(_until_closed(listen), 10 * UNIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
            await twilio.wait_calls(timeout_s=20 * UNIT)
    pcm, rate = read_wav_pcm(heard)
    assert frame_kinds(pcm, rate).count("t") >= 50, "a second of the operator's tone was heard"


async def _until_closed(ws: ClientConnection) -> None:
    while True:
        await ws.recv()
