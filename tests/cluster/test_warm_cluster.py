"""A warm transfer asked of the node that does not hold the call: forwarded to the owner, which
runs it beside the caller's stream (hold, dial, briefing, join), as a cold transfer is.

Two real apps (tests/cluster/apps.py) on loopback share one cluster (in-memory hub, and a
Redis key prefix of the test's own); the Twilio emulator is the caller and the destination (a
person who answers), the OpenAI Realtime emulator the agent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.emulators.twilio.conference import Callee
from tests.cluster.apps import two_apps
from tests.cluster.nodes import BACKENDS
from tests.cluster.test_app_cluster import bridged, detail_of, silent
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, openai_env, twilio_env
from tests.e2e.test_warm_transfer import DESK, assert_joined
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_warm_transfer_sent_to_the_other_node_runs_on_the_owner(
    tmp_path: Path, backend: str
) -> None:
    script = [{"caller": "please connect me to the desk", "say": "One moment."}]
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator(callee=Callee("person", 0.5)) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        env["SWITCHBOARD_OUTBOUND_ALLOW"] = "+1555*"
        async with two_apps(tmp_path, backend, env) as (a, b):
            pcm = caller_pcm("please connect me to the desk", gap_ms=15000)
            twilio.dial_in(f"{a.base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            (call_id,) = await eventually(lambda: bridged(a), limit_s=15, what="a's call bridged")
            await eventually(lambda: silent(a, call_id), limit_s=15, what="a's greeting played")

            warm = f"/v1/calls/{call_id}/transfer"
            outside = await b.http.post(warm, json={"destination": "+15559999999", "mode": "warm"})
            assert outside.status_code == 403, outside.text  # a's agent's plan, checked on b
            moved = await b.http.post(warm, json={"destination": "desk", "mode": "warm"})
            assert moved.status_code == 200, moved.text
            assert moved.json() == {"call_id": call_id, "status": "transferring"}
            session = a.manager.calls[call_id].session
            assert session is not None and session.warm is not None
            assert session.warm.holding  # a answered once it had started it
            again = await b.http.post(warm, json={"destination": "desk", "mode": "warm"})
            assert again.status_code == 409, again.text  # a's refusal: one at a time
            assert "already under way" in again.json()["error"]["message"]
            (report,) = await twilio.wait_calls(timeout_s=60 * UNIT)
    assert twilio.violations == [] and report.violations == []
    assert_joined(twilio, report, call_id)  # briefed and joined, by a
    timeline = (await detail_of(a.database, call_id)).timeline
    events = {e.kind: e.data for e in timeline}
    assert {k: events["call.transferred"][k] for k in ("to", "mode")} == {
        "to": DESK,
        "mode": "warm",
    }
    assert "transfer.warm.briefing" in events and "hold.started" in events
    asked = [e.data for e in timeline if e.kind == "operator.transfer"]
    assert [(x["mode"], x["node"]) for x in asked] == [("warm", "node-b")] * 2
