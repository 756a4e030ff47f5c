"""A call switchboard ended on purpose is not resumed: its ``<Connect action>`` request (here
sent after the agent hung up) is answered ``<Hangup/>`` and no new call leg starts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from switchboard.emulators.twilio import twilio_signature
from tests.e2e.harness import caller_pcm, openai_twilio_app, place_twilio_call, read_only_call
from tests.e2e.test_pairs import GAPS, SCRIPT, UTTERANCES

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_a_call_ended_on_purpose_is_answered_hangup(tmp_path: Path) -> None:
    async with openai_twilio_app(tmp_path, SCRIPT) as (oai, twilio, base):
        report = await place_twilio_call(twilio, base, caller_pcm(*UTTERANCES, gap_ms=GAPS))
        call_id = report.custom_parameters["call_id"]
        url = f"{base}/twilio/resume?call_id={call_id}&leg=late"
        params = {
            "AccountSid": twilio.account_sid,
            "CallSid": report.call_sid,
            "CallStatus": "in-progress",
            "From": "+15005550006",
            "To": "+15005550001",
            "Direction": "inbound",
        }
        signature = twilio_signature(twilio.auth_token, url, sorted(params.items()))
        async with httpx.AsyncClient() as http:
            got = await http.post(url, data=params, headers={"X-Twilio-Signature": signature})
        connections = len(oai.histories)
    assert got.status_code == 200
    assert "<Hangup" in got.text and "<Stream" not in got.text, got.text
    assert connections == 1  # no provider session for a second leg
    assert (await read_only_call(tmp_path)).record.end_reason == "agent_hangup"
