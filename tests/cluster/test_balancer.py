"""Two nodes of two workers behind HAProxy, with the carriers pointed at the balancer (#16).

Each test runs the whole rig (tests/cluster/rig.py): real ``switchboard serve --workers 2``
processes, a real HAProxy, Redis and the database; the Twilio, Telnyx and OpenAI emulators stand
in for the services we cannot reach. Marked ``cluster``: ``make unit`` skips this tier.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.emulators.twilio.signing import twilio_signature
from tests.cluster.nodes import RedisServer
from tests.cluster.rig import LIMITED, OUTBOUND_TO, TRANSFER_TO, Rig, cluster_rig
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm
from tests.waiting import eventually, eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.cluster, pytest.mark.redis, pytest.mark.timeout(240)]

CALLER = pcm16_to_ulaw(caller_pcm("hello there", lead_ms=500))


def _dial(rig: Rig, **options: Any) -> str:
    """An inbound Twilio call to the balancer; its CallSid."""
    caller = rig.twilio.dial_in(f"{rig.url}/twilio/voice", audio=CALLER, **options)
    return caller.report.call_sid


def _updates(twilio: TwilioEmulator, sid: str) -> list[dict[str, str]]:
    """The REST updates the gateway made to the call ``sid`` (hang-ups, transfers)."""
    call = twilio.calls.get(sid)
    return list(call.updates) if call is not None else []


async def _within(check: Any, limit_s: float, what: str) -> float:
    """Seconds until ``check()`` holds (polled), asserting it holds within ``limit_s``."""
    start = time.monotonic()
    await eventually(check, limit_s=limit_s, what=what)
    return time.monotonic() - start


async def _hang_up_all(rig: Rig) -> None:
    async with rig.client() as http:
        for session in await rig.sessions():
            await http.post(f"/v1/calls/{session['call_id']}/hangup")


async def test_calls_spread_over_the_nodes_and_all_complete(tmp_path: Path) -> None:
    async with cluster_rig(tmp_path) as rig:
        sids = [_dial(rig) for _ in range(6)]
        live = await rig.live(6)
        assert {s["carrier_call_id"] for s in live} == set(sids)
        assert {rig.node_of(s).name for s in live} == {"node-a", "node-b"}, live
        await _hang_up_all(rig)
        reports = await rig.twilio.wait_calls(timeout_s=30 * UNIT)
        assert sorted(r.call_sid for r in reports) == sorted(sids)
        for report in reports:  # every caller heard the greeting, whichever node had its media
            assert report.stream_sid is not None and report.heard_ms > 500, report.summary()
        assert rig.twilio.violations == []
        assert await rig.sessions() == []


async def test_sessions_on_either_node_list_every_live_call(tmp_path: Path) -> None:
    async with cluster_rig(tmp_path) as rig:
        sids = {_dial(rig) for _ in range(4)}
        await rig.live(4)
        for node in rig.nodes:
            listed = await rig.live(4, node=node)
            assert {s["carrier_call_id"] for s in listed} == sids
            assert all(s["node"] for s in listed)
        await _hang_up_all(rig)
        await rig.twilio.wait_calls(timeout_s=30 * UNIT)


async def test_hangup_and_transfer_reach_the_node_holding_the_call(tmp_path: Path) -> None:
    async with cluster_rig(tmp_path) as rig:
        _dial(rig)
        _dial(rig)
        first, second = await rig.live(2)
        for session, action in ((first, "hangup"), (second, "transfer")):
            holder = rig.node_of(session)
            sid = session["carrier_call_id"]
            async with rig.client(rig.other(holder)) as http:
                sent = time.monotonic()
                body = {"destination": TRANSFER_TO} if action == "transfer" else None
                answer = await http.post(f"/v1/calls/{session['call_id']}/{action}", json=body)
                assert answer.status_code == 200, answer.text

            def done(sid: str = sid, action: str = action) -> bool:
                updates = _updates(rig.twilio, sid)
                if action == "hangup":
                    return any(u.get("Status") == "completed" for u in updates)
                return any(TRANSFER_TO in u.get("Twiml", "") for u in updates)

            await eventually(done, limit_s=5, what=f"the {action} at the carrier")
            took = time.monotonic() - sent
            assert took < 0.5 * UNIT + 0.3, f"{action} took {took:.3f} s"  # + the HTTP round trip
        reports = await rig.twilio.wait_calls(timeout_s=30 * UNIT)
        assert {r.call_sid for r in reports} == {
            first["carrier_call_id"],
            second["carrier_call_id"],
        }
        (transferred,) = [r for r in reports if r.call_sid == second["carrier_call_id"]]
        assert TRANSFER_TO in transferred.dialed


async def test_a_signed_webhook_replayed_to_the_other_node_is_refused(tmp_path: Path) -> None:
    async with cluster_rig(tmp_path) as rig:
        url = f"{rig.url}/twilio/voice"  # what Twilio signs: the public URL
        form = {
            "AccountSid": rig.twilio.account_sid,
            "CallSid": "CA" + "7" * 32,
            "From": "+15005550006",
            "To": "+15005550001",
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        headers = {"X-Twilio-Signature": twilio_signature(rig.twilio.auth_token, url, form)}
        first, second = rig.nodes
        async with httpx.AsyncClient(timeout=10 * UNIT) as http:
            accepted = await http.post(f"{first.url}/twilio/voice", data=form, headers=headers)
            replayed = await http.post(f"{second.url}/twilio/voice", data=form, headers=headers)
            again = await http.post(f"{first.url}/twilio/voice", data=form, headers=headers)
        assert accepted.status_code == 200, accepted.text
        assert "<Stream" in accepted.text
        assert replayed.status_code == 403, replayed.text
        assert again.status_code in (200, 403)  # the same node may answer its own copy alike
        assert "<Stream" not in replayed.text


async def test_telnyx_webhooks_alternating_between_nodes_keep_commands_in_order(
    tmp_path: Path,
) -> None:
    async with cluster_rig(tmp_path) as rig:
        call = await rig.telnyx.place_inbound_call(
            to="+15550100000",
            from_="+15550111111",
            audio=None,
            webhook_url=f"{rig.url}/telnyx/webhook",  # round-robin: each event to the next node
        )
        (session,) = await rig.live(1)
        async with rig.client(rig.other(rig.node_of(session))) as http:
            assert (await http.post(f"/v1/calls/{session['call_id']}/hangup")).status_code == 200
        report = await call.wait(40 * UNIT)
        assert report.violations == []  # every command valid in the call's state when it came
        assert report.commands[:2] == ["answer", "streaming_start"]
        assert "hangup" in report.commands
        assert report.heard_ms > 500
        logs = rig.logs()
        assert logs.count("/telnyx/webhook") >= 2
        assert all("/telnyx/webhook" in node.log() for node in rig.nodes), logs


async def test_an_outbound_call_placed_on_one_node_is_answered_on_the_other(
    tmp_path: Path,
) -> None:
    async with cluster_rig(tmp_path) as rig:
        placing = rig.nodes[0]
        async with rig.client(placing) as http:
            placed = await http.post(
                "/v1/calls",
                json={
                    "carrier": "twilio",
                    "to": OUTBOUND_TO,
                    "from": "+15550100000",
                    "agent": "frontdesk",
                },
            )
        assert placed.status_code == 201, placed.text
        call_id = placed.json()["call_id"]
        # the callee's webhook and media come through the balancer, to any node
        (session,) = await rig.live(1)
        assert session["call_id"] == call_id
        assert session["direction"] == "outbound" and session["agent"] == "frontdesk"
        await _hang_up_all(rig)
        (report,) = await rig.twilio.wait_calls(timeout_s=30 * UNIT)
        assert report.heard_ms > 500, report.summary()


async def test_the_per_agent_limit_holds_across_nodes(tmp_path: Path) -> None:
    async with cluster_rig(tmp_path) as rig:
        first, second = rig.nodes
        _dial(rig, to=LIMITED)
        (session,) = await rig.live(1)
        assert session["agent"] == "limited"
        # a second call for the same agent, on the node that does not hold the first
        other = rig.other(rig.node_of(session))
        caller = rig.twilio.dial_in(f"{other.url}/twilio/voice", audio=CALLER, to=LIMITED)
        report = await eventually_async(
            lambda: _finished(rig, caller.report.call_sid), limit_s=20, what="the refusal"
        )
        assert report.outcome == "rejected: busy", report.summary()
        assert len(await rig.sessions()) == 1
        await _hang_up_all(rig)
        await rig.twilio.wait_calls(timeout_s=30 * UNIT)
        # the slot is free again: the next call for the agent is taken
        _dial(rig, to=LIMITED)
        await rig.live(1)
        await _hang_up_all(rig)
        assert first is not second


async def _finished(rig: Rig, sid: str) -> Any:
    """The report of the call ``sid`` once it has ended, else None."""
    call = rig.twilio.calls.get(sid)
    if call is None or call.task is None or not call.task.done():
        return None
    return call.task.result()


async def test_redis_stopped_and_restarted_mid_call(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis", password="cluster-test-redis-password")
    (tmp_path / "redis").mkdir()
    await redis.start()
    try:
        async with cluster_rig(tmp_path, redis_url=redis.url) as rig:
            _dial(rig)
            (session,) = await rig.live(1)
            holder = rig.node_of(session)
            await redis.stop()
            # the call goes on; cross-node control says why it cannot act; not ready
            async with rig.client(rig.other(holder)) as http:
                refused = await http.post(f"/v1/calls/{session['call_id']}/hangup")
                assert refused.status_code == 503, refused.text
                ready = await http.get("/readyz")
                assert ready.status_code == 503
            await asyncio.sleep(1.0 * UNIT)  # the call must survive an outage, not just a blip
            assert rig.twilio.calls[session["carrier_call_id"]] is not None
            await redis.start()

            async def recovered() -> bool:
                async with rig.client(rig.other(holder)) as http:
                    return (await http.get("/readyz")).status_code == 200

            await eventually_async(recovered, limit_s=20, what="readiness after Redis returned")
            # the call is in the directory again and can be hung up from the other node
            (again,) = await rig.live(1, node=rig.other(holder))
            assert again["call_id"] == session["call_id"]
            async with rig.client(rig.other(holder)) as http:
                hung = await http.post(f"/v1/calls/{session['call_id']}/hangup")
                assert hung.status_code == 200, hung.text
            (report,) = await rig.twilio.wait_calls(timeout_s=30 * UNIT)
            assert report.heard_ms > 500
    finally:
        await redis.stop()


async def test_a_killed_nodes_calls_are_marked_within_10_s(tmp_path: Path) -> None:
    async with cluster_rig(tmp_path) as rig:
        for _ in range(4):
            _dial(rig)
        live = await rig.live(4)
        victim = rig.nodes[0]
        theirs = {s["call_id"] for s in live if rig.node_of(s) is victim}
        assert theirs, live
        survivor = rig.other(victim)
        await asyncio.to_thread(victim.kill)
        killed = time.monotonic()

        async def gone() -> bool:
            listed = {s["call_id"] for s in await rig.sessions(survivor)}
            return not (listed & theirs)

        await eventually_async(gone, limit_s=10, what="the killed node's calls marked", every_s=0.2)
        assert time.monotonic() - killed < 10 * UNIT
        remaining = await rig.sessions(survivor)
        assert {s["call_id"] for s in remaining} == {s["call_id"] for s in live} - theirs
        await _hang_up_all(rig)
