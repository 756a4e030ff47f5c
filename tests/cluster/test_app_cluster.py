"""Two apps, one cluster: what a caller and an API client see when nodes share their state.

Each test runs two real apps (tests/cluster/apps.py) on loopback with the carrier and OpenAI
emulators, on both backends: one in-memory hub, and one Redis key prefix. A signed Twilio
webhook replayed to the other node is refused; a hang-up and a transfer sent to the node that
does not hold the call act within 500 ms (answered with the owner's status); whisper, take-over
and hand-back sent to it are carried out by the owner, which answers (409 when it refuses), and
the audio websockets are
relayed from the owner; every node lists every live call (and its event stream shows them); a
Telnyx call whose webhooks alternate between the nodes gets its events applied in order; an
outbound call placed on one node and answered on the other gets the agent and variables it was
placed with; an agent's limit holds across the nodes (busy at the carrier); readiness says when
a node is full or draining.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioEmulator, twilio_signature
from switchboard.store import CallStore
from tests.cluster.apps import Alternator, AppNode, agents, two_apps
from tests.cluster.nodes import BACKENDS, RedisServer, require_redis
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, caller_wav, openai_env, telnyx_env, twilio_env
from tests.e2e.test_events_stream import sse
from tests.e2e.test_operator import ws_url
from tests.waiting import eventually, eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LONG_CALL = pcm16_to_ulaw(caller_pcm("hi", gap_ms=60_000))
#: how soon a control sent to the other node must act at the carrier
CONTROL_S = 0.5


def bridged(node: AppNode) -> list[str]:
    return [c.call_id for c in node.manager.calls.values() if c.session is not None]


def hanging_up(node: AppNode, call_id: str) -> bool:
    """The node holding ``call_id`` has decided to end it (or it is over)."""
    active = node.manager.calls.get(call_id)
    return (
        active is None
        or active.ending
        or (active.session is not None and active.session.core.ended)
    )


def silent(node: AppNode, call_id: str) -> bool:
    """The agent of ``call_id`` has spoken (its greeting) and is not speaking now."""
    session = node.manager.calls[call_id].session
    assert session is not None
    return session.core.frames_sent > 0 and not session.core.agent_speaking(session.now())


def speaking(node: AppNode, call_id: str) -> bool:
    """The agent of ``call_id`` is speaking now."""
    session = node.manager.calls[call_id].session
    assert session is not None
    return session.core.agent_speaking(session.now())


def noted(node: AppNode, call_id: str, kind: str) -> bool:
    """``kind`` is on the live timeline of ``call_id`` (what the console sees)."""
    events = node.state.gateway.live.recent(call_id)
    return any(e.type == "timeline" and e.data.get("kind") == kind for e in events)


def carrier_updates(twilio: TwilioEmulator, sid: str, name: str) -> list[str]:
    """The values of ``name`` in the app's REST updates of call ``sid``."""
    return [
        value
        for r in twilio.requests
        if r.method == "POST" and r.path.endswith(f"/Calls/{sid}.json")
        if (value := r.get(name)) is not None
    ]


async def detail_of(database: str, call_id: str) -> Any:
    store = CallStore(database)
    try:
        await store.migrate()
        return await store.get_call(call_id)
    finally:
        await store.aclose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_signed_twilio_webhook_replayed_to_the_other_node_is_refused(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        # one public address in front of both nodes: both check signatures over a's URL
        async with two_apps(tmp_path, backend, env, publics=("a", "a"), media_timeout_s=1.0) as (
            a,
            b,
        ):
            url = f"{a.base}/twilio/voice"
            params = [
                ("AccountSid", twilio.account_sid),
                ("CallSid", "CA" + "1" * 32),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("From", "+15005550006"),
                ("To", "+15005550001"),
            ]
            signed = {"X-Twilio-Signature": twilio_signature(twilio.auth_token, url, params)}
            first = await a.http.post("/twilio/voice", data=dict(params), headers=signed)
            assert first.status_code == 200 and "<Stream" in first.text
            replayed = await b.http.post("/twilio/voice", data=dict(params), headers=signed)
            assert replayed.status_code == 403
            # a fresh signed request for the CallSid a answered: one answer per CallSid
            again = [*params, ("CallerCity", "Oakland")]
            resigned = {"X-Twilio-Signature": twilio_signature(twilio.auth_token, url, again)}
            second = await b.http.post("/twilio/voice", data=dict(again), headers=resigned)
            assert second.status_code == 403
            # one media-token key for the cluster: a media socket may land on either node
            token = a.state.gateway.signer.sign("call_x", "twilio", carrier_call_id="CA1")
            assert b.state.gateway.signer.verify(token, carrier="twilio").call_id == "call_x"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_hangup_and_transfer_sent_to_the_other_node_act_within_500_ms(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with two_apps(tmp_path, backend, env) as (a, b):
            first = twilio.dial_in(f"{a.base}/twilio/voice", audio=LONG_CALL)
            second = twilio.dial_in(f"{b.base}/twilio/voice", audio=LONG_CALL)
            (on_a,) = await eventually(lambda: bridged(a), limit_s=15, what="a's call bridged")
            (on_b,) = await eventually(lambda: bridged(b), limit_s=15, what="b's call bridged")
            wanted = {(on_a, "node-a"), (on_b, "node-b")}
            for node in (a, b):  # every node lists every live call, with its node

                async def listed(node: AppNode = node) -> list[dict[str, Any]] | None:
                    sessions: list[dict[str, Any]] = (await node.http.get("/v1/sessions")).json()
                    seen = {(s["call_id"], s["node"]) for s in sessions}
                    live = all(s["status"] == "in-progress" for s in sessions)
                    return sessions if seen == wanted and live else None

                sessions = await eventually_async(listed, what=f"{node.name} lists both calls")
                assert {s["agent"] for s in sessions} == {"frontdesk"}
            missing = await a.http.post("/v1/calls/call_nope/hangup")
            assert missing.status_code == 404
            refused = await b.http.post(
                f"/v1/calls/{on_a}/transfer", json={"destination": "+15559999999"}
            )
            assert refused.status_code == 403  # a's agent's dial plan, checked on b

            # the greeting has played (a hang-up waits for the agent's reply to end)
            await eventually(lambda: silent(a, on_a), limit_s=15, what="a's greeting played")
            sent = time.monotonic()
            hung = await b.http.post(f"/v1/calls/{on_a}/hangup")
            assert hung.status_code == 200, hung.text
            assert hanging_up(a, on_a)  # b answered with a's status: a had acted already
            await eventually(
                lambda: hanging_up(a, on_a), limit_s=CONTROL_S, what="a hanging up its call"
            )
            hangup_ms = (time.monotonic() - sent) * 1000
            sid = first.report.call_sid
            await eventually(
                lambda: "completed" in carrier_updates(twilio, sid, "Status"),
                limit_s=5,
                what="a's call hung up at the carrier",
            )

            said = await a.http.post(f"/v1/calls/{on_b}/say", json={"text": "One moment."})
            assert said.status_code == 200, said.text
            await eventually(lambda: speaking(b, on_b), limit_s=5, what="b's agent saying it")
            sent = time.monotonic()
            moved = await a.http.post(f"/v1/calls/{on_b}/transfer", json={"destination": "desk"})
            assert moved.status_code == 200, moved.text
            sid = second.report.call_sid
            assert carrier_updates(twilio, sid, "Twiml")  # b's answer came after its carrier's
            await eventually(  # the owner acts: notes who asked, then asks the carrier
                lambda: (
                    noted(b, on_b, "operator.transfer") or carrier_updates(twilio, sid, "Twiml")
                ),
                limit_s=CONTROL_S,
                what="b acting on the transfer",
            )
            transfer_ms = (time.monotonic() - sent) * 1000
            twiml = await eventually(
                lambda: carrier_updates(twilio, sid, "Twiml"),
                limit_s=5,
                what="b's call transferred at the carrier",
            )
            assert "+15550100200" in twiml[0]
            print(f"cross-node hang-up {hangup_ms:.0f} ms, transfer {transfer_ms:.0f} ms")
            await twilio.wait_calls(timeout_s=20 * UNIT)
    record = (await detail_of(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", on_a)).record
    assert record.end_reason == "api_hangup"
    timeline = (await detail_of(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", on_b)).timeline
    asked = [e.data for e in timeline if e.kind == "operator.transfer"]
    assert asked and asked[0]["node"] == "node-a"  # who asked, noted by the owner
    (say,) = [e.data for e in timeline if e.kind == "operator.say"]
    assert {k: say[k] for k in ("text", "by", "via", "node")} == {
        "text": "One moment.",
        "by": "operator",
        "via": "api",
        "node": "node-a",
    }


@pytest.mark.parametrize("backend", BACKENDS)
async def test_telnyx_webhooks_alternating_between_nodes_are_applied_in_order(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TelnyxEmulator(realtime=True) as telnyx,
    ):
        env = openai_env(oai) | telnyx_env(telnyx, "openai")
        async with two_apps(tmp_path, backend, env) as (a, b), Alternator(a.base, b.base) as front:
            call = await telnyx.place_inbound_call(  # its webhooks: a, b, a, b...
                to="+15550100000",
                from_="+15550111111",
                audio=caller_wav("hi", gap_ms=60_000),
                webhook_url=f"{front.base}/telnyx/webhook",
            )
            (call_id,) = await eventually(lambda: bridged(a), limit_s=15, what="a bridges it")
            for n, digit in enumerate("1234567"):  # keys pressed, each event to the other node
                body = json.dumps(
                    {
                        "data": {
                            "record_type": "event",
                            "event_type": "call.dtmf.received",
                            "id": str(uuid.uuid4()),
                            "occurred_at": "2026-01-01T00:00:00Z",
                            "payload": call.payload(digit=digit),
                        },
                        "meta": {"attempt": 1},
                    }
                ).encode()
                node = (b, a)[n % 2]
                sent = await node.http.post(
                    "/telnyx/webhook", content=body, headers=telnyx.sign(body)
                )
                assert sent.status_code == 200 and sent.json()["status"] == "accepted"
            assert (await b.http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
            report = await call.wait(30 * UNIT)
            assert report.commands[:2] == ["answer", "streaming_start"]
            assert "hangup" in report.commands
            assert {a.base, b.base} <= set(front.sent)  # both nodes received its webhooks
            assert not b.manager.calls
            await eventually(lambda: not a.manager.calls, limit_s=10, what="the call's end")
    assert telnyx.violations == []
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")  # a took the call
    try:
        await store.migrate()
        (record,) = (await store.list_calls()).items
        detail = await store.get_call(record.id)
    finally:
        await store.aclose()
    assert detail is not None
    digits = [e.data["digit"] for e in detail.timeline if e.kind == "caller.dtmf"]
    assert "".join(digits) == "1234567"
    assert detail.record.end_reason == "api_hangup"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_outbound_call_placed_on_one_node_and_answered_on_the_other(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        env |= {"SWITCHBOARD_OUTBOUND_ALLOW": "+15550100999"}
        # a's public URL is b's: the carrier's webhook and media for a's call reach b
        async with two_apps(tmp_path, backend, env, publics=("b", "b")) as (a, b):
            placed = await a.http.post(
                "/v1/calls",
                json={
                    "carrier": "twilio",
                    "to": "+15550100999",
                    "from": "+15550100000",
                    "agent": "sales",
                    "variables": {"name": "Ada"},
                },
            )
            assert placed.status_code == 201, placed.text
            call_id = placed.json()["call_id"]
            assert await eventually(lambda: call_id in bridged(b), limit_s=15, what="b bridges it")
            assert not a.manager.calls
            active = b.manager.calls[call_id]
            assert active.agent.name == "sales"
            assert active.agent.greeting == "Hi Ada, this is sales."
            shown = (await a.http.get("/v1/sessions")).json()
            assert [(s["call_id"], s["agent"], s["node"]) for s in shown] == [
                (call_id, "sales", "node-b")
            ]
            assert (await a.http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
            await twilio.wait_calls(timeout_s=20 * UNIT)
        detail = await detail_of(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", call_id)
        assert detail.record.agent == "sales"
        assert detail.record.extra["variables"] == {"name": "Ada"}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_agents_limit_holds_across_nodes_and_readiness_says_full(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
        TelnyxEmulator(realtime=True) as telnyx,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai") | telnyx_env(telnyx)
        env |= {"SWITCHBOARD_MAX_CALLS": "1"}
        book = agents(max_concurrent_calls=1)
        async with two_apps(tmp_path, backend, env, agents=book) as (a, b):
            for node in (a, b):
                ready = await node.http.get("/readyz")
                assert ready.status_code == 200 and ready.json()["status"] == "ready"
            first = twilio.dial_in(f"{a.base}/twilio/voice", audio=LONG_CALL)
            await eventually(lambda: bridged(a), limit_s=15, what="a's call bridged")
            second = twilio.dial_in(f"{b.base}/twilio/voice", audio=LONG_CALL)
            await eventually(lambda: second.report.outcome != "unknown", what="b's answer")
            assert second.report.outcome == "rejected: busy"  # frontdesk's one call is on a
            refused = await telnyx.place_inbound_call(
                to="+15550100000",
                from_="+15550111111",
                audio=caller_wav("hi"),
                webhook_url=f"{b.base}/telnyx/webhook",
            )
            assert (await refused.wait(15 * UNIT)).commands == ["reject"]  # busy, unanswered
            metrics = (await b.http.get("/metrics")).text
            assert 'switchboard_calls_refused_total{carrier="twilio",reason="busy"} 1.0' in metrics
            assert 'switchboard_calls_refused_total{carrier="telnyx",reason="busy"} 1.0' in metrics
            full = await a.http.get("/readyz")  # a holds SWITCHBOARD_MAX_CALLS calls
            assert full.status_code == 503 and full.json()["reasons"] == ["full: 1 calls"]
            assert (await b.http.get("/readyz")).status_code == 200
            b.state.gateway.drain()
            draining = await b.http.get("/readyz")
            assert draining.status_code == 503 and draining.json()["reasons"] == ["draining"]
            first.hang_up()
            await twilio.wait_calls(timeout_s=20 * UNIT)
            await eventually(lambda: not a.manager.calls, limit_s=10, what="a's call ended")
            assert (await a.http.get("/readyz")).status_code == 200
            # the agent's slot is free again: a takes the next call
            third = twilio.dial_in(f"{a.base}/twilio/voice", audio=LONG_CALL)
            await eventually(lambda: bridged(a), limit_s=15, what="the next call bridged")
            third.hang_up()
            await twilio.wait_calls(timeout_s=20 * UNIT)


@pytest.mark.redis
async def test_redis_down_mid_call_live_calls_go_on_and_the_nodes_recover(tmp_path: Path) -> None:
    require_redis(server=False)  # the server is the test's own, stopped and restarted
    server = RedisServer(tmp_path, password=f"pw-{uuid.uuid4().hex}")
    await server.start()
    try:
        async with (
            OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
            TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
        ):
            env = openai_env(oai) | twilio_env(twilio, "openai")
            async with two_apps(tmp_path, "redis", env, redis_url=server.url) as (a, b):
                caller = twilio.dial_in(f"{a.base}/twilio/voice", audio=LONG_CALL)
                (call_id,) = await eventually(lambda: bridged(a), limit_s=15, what="bridged")
                await eventually(lambda: silent(a, call_id), limit_s=15, what="greeting played")

                await server.stop()
                refused = await b.http.post(f"/v1/calls/{call_id}/hangup")
                assert refused.status_code == 503
                message = refused.json()["error"]["message"]
                assert "cluster" in message and "pw-" not in message  # clear, no password
                for action in ("whisper", "takeover", "handback"):
                    body = {"text": "x"} if action == "whisper" else None
                    sent = await b.http.post(f"/v1/calls/{call_id}/{action}", json=body)
                    assert sent.status_code == 503, sent.text
                    assert "cluster" in sent.json()["error"]["message"]
                for node in (a, b):
                    ready = await node.http.get("/readyz")
                    assert ready.status_code == 503
                    assert ready.json()["reasons"] == ["cluster state (Redis) unreachable"]
                listed = await a.http.get("/v1/sessions")  # this node's calls only
                assert [s["call_id"] for s in listed.json()] == [call_id]
                await asyncio.sleep(1.0)
                assert call_id in bridged(a) and caller.report.outcome == "unknown"  # still up

                await server.start()  # empty: the nodes write their calls back by themselves
                for node in (a, b):

                    async def is_ready(node: AppNode = node) -> bool:
                        return (await node.http.get("/readyz")).status_code == 200

                    await eventually_async(is_ready, limit_s=10, what=f"{node.name} ready again")

                async def listed_on_b() -> bool:
                    sessions = (await b.http.get("/v1/sessions")).json()
                    return [(s["call_id"], s["node"]) for s in sessions] == [(call_id, "node-a")]

                await eventually_async(listed_on_b, limit_s=10, what="a's call listed on b again")
                hung = await b.http.post(f"/v1/calls/{call_id}/hangup")
                assert hung.status_code == 200, hung.text
                await eventually(lambda: hanging_up(a, call_id), limit_s=CONTROL_S, what="hang-up")
                await twilio.wait_calls(timeout_s=20 * UNIT)
    finally:
        await server.stop()
    detail = await detail_of(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", call_id)
    assert detail.record.end_reason == "api_hangup"


class WebhooksTo(httpx.AsyncBaseTransport):
    """Sends the carrier's webhooks for ``public`` to ``node`` instead: a balancer that
    routed the webhook to one node (its media socket goes to the public address)."""

    def __init__(self, public: str, node: str) -> None:
        self.public, self.node = public, node
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.startswith(self.public):
            request.url = httpx.URL(self.node + url[len(self.public) :])
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_twilio_call_whose_media_reaches_the_other_node_is_taken_over(
    tmp_path: Path, backend: str
) -> None:
    script = [{"caller": "hi", "say": "Hello there."}]
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=1.0, max_call_s=40.0) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        # the public address is b's; the webhook is routed to a, the media socket to b
        async with (
            two_apps(tmp_path, backend, env, publics=("b", "b")) as (a, b),
            httpx.AsyncClient(transport=WebhooksTo(b.base, a.base), timeout=10 * UNIT) as http,
        ):
            caller = twilio.dial_in(
                f"{b.base}/twilio/voice", audio=pcm16_to_ulaw(caller_pcm("hi")), http=http
            )
            report = (await twilio.wait_calls(timeout_s=40 * UNIT))[0]
            assert report.call_sid == caller.report.call_sid
            assert report.webhook_status == 200
            assert report.heard_ms > 500  # the agent was heard: b bridged the call
            assert not a.manager.calls
    assert oai.violations == [] and report.violations == []
    (call_id,) = [r.id for r in (await _records(tmp_path / "b.db"))]
    # a answered the webhook (its record of the call, in its own database here, stays as it
    # was: with one shared database b continues that record)
    assert [r.id for r in (await _records(tmp_path / "a.db"))] == [call_id]
    detail = await detail_of(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", call_id)
    assert detail.record.agent == "frontdesk"
    assert ("agent", "Hello, thanks for calling.") in [(t.role, t.text) for t in detail.transcript]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_telnyx_call_whose_media_reaches_the_other_node_is_taken_over(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TelnyxEmulator(realtime=True) as telnyx,
    ):
        env = openai_env(oai) | telnyx_env(telnyx, "openai")
        async with two_apps(tmp_path, backend, env, publics=("b", "b")) as (a, b):
            call = await telnyx.place_inbound_call(  # webhooks to a; the stream goes to b
                to="+15550100000",
                from_="+15550111111",
                audio=caller_wav("hi", gap_ms=60_000),
                webhook_url=f"{a.base}/telnyx/webhook",
            )
            (call_id,) = await eventually(lambda: bridged(b), limit_s=15, what="b bridges it")
            assert not a.manager.calls
            assert (await a.http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
            report = await call.wait(30 * UNIT)
            assert report.commands[:2] == ["answer", "streaming_start"]
            assert "hangup" in report.commands
            await eventually(lambda: not b.manager.calls, limit_s=10, what="the call's end")
    assert telnyx.violations == []
    detail = await detail_of(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", call_id)
    assert detail.record.end_reason == "api_hangup"


async def _records(database: Path) -> list[Any]:
    store = CallStore(f"sqlite+aiosqlite:///{database}")
    try:
        await store.migrate()
        return list((await store.list_calls()).items)
    finally:
        await store.aclose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_twilio_status_callback_reaching_the_other_node_is_applied_by_the_owner(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with two_apps(tmp_path, backend, env) as (a, b):
            caller = twilio.dial_in(f"{a.base}/twilio/voice", audio=LONG_CALL)
            (call_id,) = await eventually(lambda: bridged(a), limit_s=15, what="bridged on a")
            url = f"{b.base}/twilio/status"
            params = [
                ("AccountSid", twilio.account_sid),
                ("CallSid", caller.report.call_sid),
                ("CallStatus", "completed"),
                ("SequenceNumber", "3"),
            ]
            signed = {"X-Twilio-Signature": twilio_signature(twilio.auth_token, url, params)}
            sent = await b.http.post("/twilio/status", data=dict(params), headers=signed)
            assert sent.status_code == 204
            await eventually(lambda: hanging_up(a, call_id), limit_s=5, what="a ends its call")
            caller.hang_up()
            await twilio.wait_calls(timeout_s=20 * UNIT)
    detail = await detail_of(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", call_id)
    assert detail.record.end_reason == "caller_hangup"
    assert "carrier.completed" in [e.kind for e in detail.timeline]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_whisper_take_over_and_hand_back_sent_to_the_other_node(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with two_apps(tmp_path, backend, env) as (a, b):
            twilio.dial_in(f"{a.base}/twilio/voice", audio=LONG_CALL)
            (on_a,) = await eventually(lambda: bridged(a), limit_s=15, what="a's call bridged")
            await eventually(lambda: silent(a, on_a), limit_s=15, what="a's greeting played")

            missing = await b.http.post("/v1/calls/call_nope/whisper", json={"text": "x"})
            assert missing.status_code == 404, missing.text
            told = await b.http.post(
                f"/v1/calls/{on_a}/whisper", json={"text": "Offer a discount.", "respond": False}
            )
            assert told.status_code == 200 and told.json()["status"] == "whispered", told.text
            notes = [
                e["item"]["content"][0]["text"]
                for e in oai.received
                if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
            ]
            assert "Offer a discount." in notes  # the owner told its agent before answering

            taken = await b.http.post(f"/v1/calls/{on_a}/takeover")
            assert taken.status_code == 200, taken.text
            assert a.manager.calls[on_a].session is not None
            again = await b.http.post(f"/v1/calls/{on_a}/takeover")
            assert again.status_code == 409 and "node-a" in again.text  # the owner's refusal
            said = await b.http.post(f"/v1/calls/{on_a}/say", json={"text": "x"})
            assert said.status_code == 409, said.text
            back = await b.http.post(f"/v1/calls/{on_a}/handback")
            assert back.status_code == 200 and back.json()["status"] == "handed-back", back.text
            twice = await b.http.post(f"/v1/calls/{on_a}/handback")
            assert twice.status_code == 409, twice.text
            # the audio is on the owner: b relays it (tests/cluster/test_console_cluster.py)
            for path in ("listen", "operator"):
                async with connect(ws_url(b.base, f"/v1/calls/{on_a}/{path}")) as ws:
                    started = json.loads(await asyncio.wait_for(ws.recv(), 5 * UNIT))
                    assert started["type"] == "started" and started["node"] == "node-a"
            async with connect(ws_url(b.base, "/v1/calls/call_nope/listen")) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5 * UNIT)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4404, closed.value
            assert (await b.http.post(f"/v1/calls/{on_a}/hangup")).status_code == 200
            await twilio.wait_calls(timeout_s=20 * UNIT)
    timeline = (await detail_of(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", on_a)).timeline
    acts = {e.kind: e.data for e in timeline if e.kind.startswith("operator.")}
    for kind in ("operator.whisper", "operator.take_over", "operator.hand_back"):
        assert acts[kind]["node"] == "node-b" and acts[kind]["by"] == "operator", acts
    assert acts["operator.whisper"]["text"] == "Offer a discount."
    assert "seconds" in acts["operator.hand_back"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_event_stream_of_one_node_shows_a_call_held_by_the_other(
    tmp_path: Path, backend: str
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with (
            two_apps(tmp_path, backend, env) as (a, b),
            b.http.stream("GET", "/v1/events") as response,
        ):
            assert response.status_code == 200
            events = sse(response)
            assert await anext(events) == ("snapshot", {"calls": []})
            twilio.dial_in(f"{a.base}/twilio/voice", audio=LONG_CALL)
            seen: list[tuple[str, dict[str, Any]]] = []
            async with asyncio.timeout(15 * UNIT):
                async for kind, event in events:
                    seen.append((kind, event))
                    if kind == "call.started":
                        break
            started = seen[-1][1]
            on_a = started["call_id"]
            assert started["data"]["node"] == "node-a" and started["data"]["agent"] == "frontdesk"
            assert on_a in a.manager.calls and on_a not in b.manager.calls
            await eventually(lambda: bridged(a), limit_s=15, what="a's call bridged")
            assert (await b.http.post(f"/v1/calls/{on_a}/hangup")).status_code == 200
            async with asyncio.timeout(15 * UNIT):
                async for kind, event in events:
                    seen.append((kind, event))
                    if kind == "call.ended":
                        break
            assert seen[-1][1]["call_id"] == on_a
            assert {e["call_id"] for _, e in seen} == {on_a}
            await twilio.wait_calls(timeout_s=20 * UNIT)
