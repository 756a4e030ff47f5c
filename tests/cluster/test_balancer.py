"""Two nodes of two workers behind HAProxy, with the carriers pointed at the balancer (#16).

Each test runs the whole rig (tests/cluster/rig.py): real ``switchboard serve --workers 2``
processes, a real HAProxy, Redis and the database; the Twilio, Telnyx and OpenAI emulators stand
in for the services we cannot reach. Marked ``cluster``: ``make unit`` skips this tier.

A carrier's media socket goes wherever the balancer sends it: most calls' media reach another
worker or node than the one that answered the webhook, which adopts the call (docs/cluster.md).
Each case runs several calls, so adoption is exercised every time (a call's media reaches the
worker that answered its webhook one time in four). The cases that cross nodes also run
"pinned" (one worker per node, every carrier request to node-a, the tests reaching node-b
directly), as a deployment that keeps a call on one node does.
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.cluster import Cluster
from switchboard.emulators.twilio import TwilioCallReport, TwilioEmulator
from switchboard.emulators.twilio.signing import twilio_signature
from tests.cluster.nodes import RedisServer
from tests.cluster.processes import ServeNode
from tests.cluster.rig import LIMITED, OUTBOUND_TO, TRANSFER_TO, Rig, cluster_rig
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm
from tests.waiting import eventually, eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.cluster, pytest.mark.redis, pytest.mark.timeout(240)]

CALLER = pcm16_to_ulaw(caller_pcm("hello there", lead_ms=500))


#: the topologies (parametrised): "spread", the balancer spreading every request over both
#: nodes of two workers; "pinned", every carrier request to node-a (rig.py, cluster_rig)


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


async def _hang_up_all(rig: Rig, node: ServeNode | None = None) -> None:
    """Hang up every listed call through the balancer (or ``node``); each answered 200 by its
    owner (a 404 here is a live call its node's silence had marked lost: that node was starved
    past ``node_ttl_s``)."""
    async with rig.client(node) as http:
        for session in await rig.sessions(node):
            hung = await http.post(f"/v1/calls/{session['call_id']}/hangup")
            assert hung.status_code == 200, (session, hung.text)


async def test_calls_spread_over_the_nodes_and_all_complete(tmp_path: Path) -> None:
    async with cluster_rig(tmp_path) as rig:
        sids = [_dial(rig) for _ in range(6)]
        live = await rig.live(6)
        assert {s["carrier_call_id"] for s in live} == set(sids)
        assert {rig.node_of(s).name for s in live} == {"node-a", "node-b"}, live
        await _hang_up_all(rig)
        reports = await rig.twilio.wait_calls(timeout_s=30 * UNIT)
        assert sorted(r.call_sid for r in reports) == sorted(sids)
        for report in reports:  # every caller heard the agent, whichever worker had its media
            assert report.stream_sid is not None and report.heard_ms > 0, report.summary()
            assert report.outcome == "hangup by REST", report.summary()  # the API's hang-up
        assert rig.twilio.violations == []
        await eventually_async(
            lambda: _no_sessions(rig), limit_s=10, what="no call listed", every_s=0.1
        )


@pytest.mark.parametrize("topology", ["spread", "pinned"])
async def test_sessions_on_either_node_list_every_live_call(tmp_path: Path, topology: str) -> None:
    async with cluster_rig(tmp_path, pinned=topology == "pinned") as rig:
        sids = {_dial(rig) for _ in range(4)}
        await rig.live(4)
        for node in rig.nodes:
            listed = await rig.live(4, node=node)
            assert {s["carrier_call_id"] for s in listed} == sids
            assert all(s["node"] for s in listed)
        await _hang_up_all(rig)
        await rig.twilio.wait_calls(timeout_s=30 * UNIT)


@pytest.mark.serial  # measures the 500 ms from the POST to the carrier: not beside other tests
@pytest.mark.parametrize("topology", ["spread", "pinned"])
async def test_hangup_and_transfer_reach_the_node_holding_the_call(
    tmp_path: Path, topology: str
) -> None:
    async with cluster_rig(tmp_path, pinned=topology == "pinned") as rig:
        for _ in range(4):
            _dial(rig)
        live = await rig.live(4)
        actions = {s["call_id"]: a for s, a in zip(live, ["hangup", "transfer"] * 2, strict=True)}
        for session in live:
            action = actions[session["call_id"]]
            sid = session["carrier_call_id"]
            async with rig.client(rig.other(rig.node_of(session))) as http:
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
            print(f"{topology}: {action} at the carrier {took * 1000:.0f} ms after the POST")
            assert took < 0.5 * UNIT + 0.3, f"{action} took {took:.3f} s"  # + the HTTP round trip
        reports = await rig.twilio.wait_calls(timeout_s=30 * UNIT)
        assert {r.call_sid for r in reports} == {s["carrier_call_id"] for s in live}
        for session in live:
            (report,) = [r for r in reports if r.call_sid == session["carrier_call_id"]]
            assert (TRANSFER_TO in report.dialed) == (actions[session["call_id"]] == "transfer")


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
        headers = {"X-Twilio-Signature": twilio_signature(rig.twilio.auth_token, url, form.items())}
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
        calls = [
            await rig.telnyx.place_inbound_call(
                to="+15550100000",
                from_=f"+1555011111{i}",
                webhook_url=f"{rig.url}/telnyx/webhook",  # round-robin: each event to the next node
            )
            for i in range(4)
        ]
        live = await rig.live(4)
        # The greeting plays in real time and a hang-up cuts it at once: let each call's audio
        # run a second across the nodes before the hang-ups (the check below is that it did).
        await asyncio.sleep(1.0)
        for session in live:
            async with rig.client(rig.other(rig.node_of(session))) as http:
                hung = await http.post(f"/v1/calls/{session['call_id']}/hangup")
                assert hung.status_code == 200, hung.text
        for call in calls:
            report = await call.wait(40 * UNIT)
            assert report.violations == []  # every command valid in the call's state then
            assert report.commands[:2] == ["answer", "streaming_start"]
            assert report.commands[-1] == "hangup"
            assert report.heard_ms > 500
        assert all("/telnyx/webhook" in node.log() for node in rig.nodes), rig.logs()


@pytest.mark.parametrize("topology", ["spread", "pinned"])
async def test_an_outbound_call_placed_on_one_node_is_answered_on_the_other(
    tmp_path: Path, topology: str
) -> None:
    """Calls placed one at a time until one was answered on the node that placed it and one on
    the other node; each gets the agent it was placed with, "limited", which the callee's
    number does not route to. The placing node goes a, a, b, b...: whether the balancer's
    round-robin sends each call's media to the same node or alternates, both cases come within
    three calls (pinned: the callees' requests all reach node-a)."""
    async with cluster_rig(tmp_path, pinned=topology == "pinned") as rig:
        crossed: set[bool] = set()  # answered on another node than the placing one?
        for i in range(8):
            placing = rig.nodes[(i // 2) % 2]
            async with rig.client(placing) as http:
                answer = await http.post(
                    "/v1/calls",
                    json={
                        "carrier": "twilio",
                        "to": OUTBOUND_TO,
                        "from": "+15550100000",
                        "agent": "limited",
                    },
                )
                assert answer.status_code == 201, answer.text
                call_id = answer.json()["call_id"]
            # the callee's webhook and media come through the balancer, to any node
            (session,) = await rig.live(1)
            assert session["call_id"] == call_id, session
            assert session["direction"] == "outbound" and session["agent"] == "limited", session
            answering = rig.node_of(session)
            assert topology == "spread" or answering is rig.nodes[0], session
            crossed.add(answering is not placing)
            caller = rig.twilio.calls[session["carrier_call_id"]].caller
            assert caller is not None
            # the callee hears the agent (its greeting), wherever the call landed
            await eventually(functools.partial(_heard, caller.report), what="the agent heard")
            async with rig.client() as http:  # hung up (the agent has one line), wherever
                hung = await http.post(f"/v1/calls/{call_id}/hangup")
                assert hung.status_code == 200, hung.text
            await eventually_async(
                lambda: _no_sessions(rig), limit_s=10, what="the call's end", every_s=0.1
            )
            if crossed == {True, False}:
                break
        assert crossed == {True, False}, rig.logs()
        for report in await rig.twilio.wait_calls(timeout_s=30 * UNIT):
            assert report.outcome == "hangup by REST", report.summary()
            assert report.heard_ms > 500, report.summary()


async def test_the_per_agent_limit_holds_across_nodes(tmp_path: Path) -> None:
    """Four calls for an agent of one line at once, through the balancer (so on both nodes):
    one is taken, three hear busy; once it has been hung up, the agent's next call is taken."""
    async with cluster_rig(tmp_path) as rig:
        sids = [_dial(rig, to=LIMITED) for _ in range(4)]

        async def refused() -> list[str] | None:
            ended = [await _finished(rig, sid) for sid in sids]
            busy = [r.call_sid for r in ended if r is not None and r.outcome == "rejected: busy"]
            return busy if len(busy) == 3 else None

        busy = await eventually_async(refused, limit_s=30, what="three calls busy", every_s=0.1)
        (taken,) = set(sids) - set(busy)
        # the taken call may still be on its way to the worker its media reached (adoption)
        sessions = await rig.live(1, node=rig.nodes[1])
        assert [(s["carrier_call_id"], s["agent"]) for s in sessions] == [(taken, "limited")]
        async with rig.client() as http:  # through the balancer, to whichever node
            hung = await http.post(f"/v1/calls/{sessions[0]['call_id']}/hangup")
            assert hung.status_code == 200, hung.text
        await eventually_async(
            lambda: _no_sessions(rig), limit_s=10, what="the call's end", every_s=0.1
        )
        # its slot was freed with it: the next call for the agent is taken, not refused
        next_sid = _dial(rig, to=LIMITED)

        async def admitted() -> bool:
            report = await _finished(rig, next_sid)
            assert report is None or report.outcome != "rejected: busy", report.summary()
            return any(s["carrier_call_id"] == next_sid for s in await rig.sessions())

        await eventually_async(admitted, limit_s=20, what="the next call taken", every_s=0.1)
        await _hang_up_all(rig)


def _heard(report: TwilioCallReport) -> bool:
    """Whether the caller has heard over half a second of the agent (while the call runs)."""
    return report.heard_ms > 500


async def _lists(rig: Rig, node: ServeNode, call_id: str) -> bool:
    return any(s["call_id"] == call_id for s in await rig.sessions(node))


async def _no_sessions(rig: Rig) -> bool:
    return await rig.sessions() == []


async def _finished(rig: Rig, sid: str) -> Any:
    """The report of the call ``sid`` once it has ended, else None."""
    call = rig.twilio.calls.get(sid)
    if call is None or call.task is None or not call.task.done():
        return None
    return call.task.result()


@pytest.mark.parametrize("topology", ["spread", "pinned"])
async def test_redis_stopped_and_restarted_mid_call(tmp_path: Path, topology: str) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis", password="cluster-test-redis-password")
    await redis.start()  # a private server: the shared one on 6379 is never stopped
    try:
        async with cluster_rig(tmp_path, redis_url=redis.url, pinned=topology == "pinned") as rig:
            for _ in range(4):
                _dial(rig)
            live = await rig.live(4)
            await redis.stop()
            # the calls go on; cross-node control says why it cannot act; nodes are not ready
            for session in live:
                async with rig.client(rig.other(rig.node_of(session))) as http:
                    refused = await http.post(f"/v1/calls/{session['call_id']}/hangup")
                    assert refused.status_code == 503, refused.text
            for node in rig.nodes:
                async with rig.client(node) as http:
                    assert (await http.get("/readyz")).status_code == 503
            await asyncio.sleep(1.0 * UNIT)  # an outage, not a blip: the calls must outlive it
            assert await rig.twilio.wait_calls(timeout_s=0.01) == []  # none has ended
            await redis.start()

            async def ready() -> bool:
                for node in rig.nodes:
                    async with rig.client(node) as http:
                        if (await http.get("/readyz")).status_code != 200:
                            return False
                return True

            await eventually_async(ready, limit_s=20, what="readiness after Redis returned")
            # every call is in the directory again, and can be hung up from the other node
            again = await rig.live(4, node=rig.nodes[1])
            assert {s["call_id"] for s in again} == {s["call_id"] for s in live}
            for session in again:
                other = rig.other(rig.node_of(session))
                # readiness was asked of one worker per node: the call's own worker may write
                # it back a moment later (within Cluster's OUTAGE_RETRY_S); the other node lists
                # it from the directory once it has, and may hang it up from then on
                await eventually_async(
                    functools.partial(_lists, rig, other, session["call_id"]),
                    limit_s=5,
                    what="the call in the directory again",
                    every_s=0.05,
                )
                async with rig.client(other) as http:
                    hung = await http.post(f"/v1/calls/{session['call_id']}/hangup")
                    assert hung.status_code == 200, hung.text
            for report in await rig.twilio.wait_calls(timeout_s=30 * UNIT):
                # every call lasted until the API hung it up, its agent heard: how much of the
                # greeting plays before the caller barges in (0.4-0.8 s seen) is not this test's
                assert report.outcome == "hangup by REST", report.summary()
                assert report.heard_ms > 0, report.summary()
    finally:
        await redis.stop()


@pytest.mark.parametrize("topology", ["spread", "pinned"])
async def test_a_killed_nodes_calls_are_marked_within_10_s(tmp_path: Path, topology: str) -> None:
    """SIGKILL one node: within 10 s none of its calls is listed on it any more. Each is marked
    lost by the survivor's sweep — or resumed on the survivor: its media stream died with the
    node, so Twilio requested the call's ``<Connect action>`` and the balancer sent that to the
    survivor (docs/cluster.md#resume-on-another-node; which calls, depends on the balancer)."""
    async with cluster_rig(tmp_path, pinned=topology == "pinned") as rig:
        for _ in range(4):
            _dial(rig)
        live = await rig.live(4)
        victim = rig.nodes[0]
        theirs = {s["call_id"] for s in live if rig.node_of(s) is victim}
        assert theirs, live
        survivor = rig.other(victim)
        await asyncio.to_thread(victim.kill)
        killed = time.monotonic()

        async def left_the_victim() -> list[dict[str, dict[str, Any]]] | None:
            listed = {s["call_id"]: s for s in await rig.sessions(survivor)}
            if any(rig.node_of(listed[c]) is victim for c in theirs if c in listed):
                return None
            return [listed]  # (a list: none listed at all is an answer too)

        (listed,) = await eventually_async(
            left_the_victim, limit_s=10, what="the killed node's calls marked", every_s=0.2
        )
        assert time.monotonic() - killed < 10 * UNIT
        resumed = theirs & set(listed)
        observer = Cluster.on_redis(rig.redis_url, node_id="observer")  # reads only
        try:
            for call_id in theirs - resumed:  # marked, not forgotten: the directory keeps it
                entry = await observer.directory.get(call_id)
                assert entry is not None and entry.state == "lost", (call_id, entry)
        finally:
            await observer.aclose()
        for call_id in resumed:  # a resumed call: the survivor's, the caller's stream a new one
            sid = listed[call_id]["carrier_call_id"]
            caller = rig.twilio.calls[sid].caller
            assert caller is not None
            actions = caller.report.actions
            assert any("/twilio/resume" in url and code == 200 for url, code in actions), actions
        assert set(listed) == {s["call_id"] for s in live} - theirs | resumed
        # asked of the survivor itself: the one node left, busy taking the victim's calls over,
        # may miss a health check, and HAProxy then answers 503 "no server available" (CI)
        await _hang_up_all(rig, survivor)
