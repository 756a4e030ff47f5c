"""The toll-fraud guard end to end (docs/security.md, "Transfers and outbound calls").

The model's ``transfer_call`` goes through a scripted OpenAI Realtime emulator and a simulated
Twilio caller; the API goes over HTTP. Refused destinations are never dialled: the model gets a
tool error it can speak about, the refusal is logged at WARNING with what was asked for, and the
API answers 403 (429 past the per-token outbound rate).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    agent_book,
    caller_pcm,
    openai_env,
    read_only_call,
    running_app,
    twilio_env,
)
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def transfer(destination: str, say: str) -> dict[str, Any]:
    tool = {"name": "transfer_call", "arguments": {"destination": destination}}
    return {"caller": "put me through", "tool": tool, "say": say}


GOODBYE: dict[str, Any] = {
    "caller": "fine bye",
    "tool": {"name": "end_call", "arguments": {}},
    "say": "Goodbye!",
}

# (agent fields, what the caller talks the model into, the second request, what is dialled)
CASES: dict[str, tuple[dict[str, Any], str, dict[str, Any], list[str]]] = {
    # A directory restricts transfers to its destinations, even with no allow list.
    "directory": (
        {"directory": {"billing": "+15550100201"}},
        "+88212345678",
        transfer("billing", "Transferring you to billing."),
        ["+15550100201"],
    ),
    # An allow list's broad prefix does not reach a premium-rate range inside it.
    "allow list": (
        {"transfer_allow": ["+1*"]},
        "+19005550100",
        transfer("+1 415 555 0100", "Transferring you now."),
        ["+14155550100"],
    ),
    # Neither: every destination is refused, however ordinary.
    "nothing": ({}, "+15550100201", GOODBYE, []),
}


def function_outputs(oai: OpenAIRealtimeEmulator) -> list[dict[str, Any]]:
    """The function results the app sent the model (parsed)."""
    return [
        json.loads(event["item"]["output"])
        for event in oai.received
        if event.get("type") == "conversation.item.create"
        and event["item"].get("type") == "function_call_output"
    ]


def warnings_naming(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


@pytest.mark.parametrize("case", list(CASES))
async def test_the_model_cannot_transfer_outside_the_agents_dial_plan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    fields, refused, second, dialled = CASES[case]
    script = [transfer(refused, "Sorry, I cannot transfer you there."), second]
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with running_app(tmp_path, env, agents=agent_book(**fields)) as (base, _s, _a):
            pcm = caller_pcm("put me through", second["caller"], gap_ms=[3500, 6000])
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
        assert oai.violations == []
    assert report.violations == []
    assert report.dialed == dialled  # the refused destination never reached the carrier
    first = function_outputs(oai)[0]
    assert set(first) == {"error"}
    assert f"transfer to '{refused}' is not allowed" in first["error"]
    if case == "directory":
        assert first["error"].endswith("You can transfer to: billing.")
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == ("agent_hangup" if case == "nothing" else "transferred")
    tool_calls = [(t.name, t.ok) for t in detail.tool_calls]
    assert tool_calls[0] == ("transfer_call", False)
    assert tool_calls[1][1] is True
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", "Sorry, I cannot transfer you there.") in said
    refusals = [e.data for e in detail.timeline if e.kind == "call.transfer_refused"]
    assert [r["requested"] for r in refusals] == [refused]
    assert warnings_naming(caplog, refused), "the refusal is logged with the destination"


async def test_outbound_calls_are_refused_unless_allow_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "listed").mkdir()
    async with TwilioEmulator() as twilio:
        # No SWITCHBOARD_OUTBOUND_ALLOW: the default refuses every outbound call.
        async with (
            running_app(tmp_path / "default", twilio_env(twilio)) as (base, _s, _a),
            httpx.AsyncClient(base_url=base, headers=AUTH) as http,
        ):
            body = {"carrier": "twilio", "to": "+15550100999", "from": "+15550100000"}
            refused = await http.post("/v1/calls", json=body)
            assert refused.status_code == 403, refused.text
            assert "+15550100999 is not on the allow list" in refused.json()["error"]["message"]
        env = twilio_env(twilio) | {"SWITCHBOARD_OUTBOUND_ALLOW": "+1*, +4420*"}
        async with (
            running_app(tmp_path / "listed", env) as (base, _s, _a),
            httpx.AsyncClient(base_url=base, headers=AUTH) as http,
        ):
            for to, why in [
                ("+88212345678", "not on the allow list"),
                ("+447700900123", "not on the allow list"),
                ("+18765550100", "high-cost range (+1876, Jamaica)"),
                ("+19005550100", "high-cost range (+1900,"),
            ]:
                body = {"carrier": "twilio", "to": to, "from": "+15550100000"}
                answer = await http.post("/v1/calls", json=body)
                assert answer.status_code == 403, (to, answer.text)
                assert why in answer.json()["error"]["message"]
                assert warnings_naming(caplog, to), to
    assert not [r for r in twilio.requests if r.path.endswith("/Calls.json")], "nothing dialled"


async def test_outbound_calls_are_rate_limited_per_token(tmp_path: Path) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,  # the callee hangs up a second after the greeting
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        env |= {
            "SWITCHBOARD_OUTBOUND_ALLOW": "+1555*",
            "SWITCHBOARD_OUTBOUND_RATE_LIMIT": "2",
            "SWITCHBOARD_OUTBOUND_RATE_WINDOW_S": "600",
        }
        async with (
            running_app(tmp_path, env) as (base, _s, _a),
            httpx.AsyncClient(base_url=base, headers=AUTH) as http,
        ):
            body = {"carrier": "twilio", "to": "+15550100999", "from": "+15550100000"}
            placed = [await http.post("/v1/calls", json=body) for _ in range(2)]
            assert [p.status_code for p in placed] == [201, 201], [p.text for p in placed]
            limited = await http.post("/v1/calls", json=body)
            assert limited.status_code == 429
            assert "2 per 600 s per token" in limited.json()["error"]["message"]
            assert 1 <= int(limited.headers["Retry-After"]) <= 600
            reports = await twilio.wait_calls(timeout_s=30 * UNIT)
    assert len(reports) == 2
    assert len([r for r in twilio.requests if r.path.endswith("/Calls.json")]) == 2


async def test_api_transfers_follow_the_agents_dial_plan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    book = agent_book(directory={"billing": "+15550100201"})
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with (
            running_app(tmp_path, env, agents=book) as (base, _s, _a),
            httpx.AsyncClient(base_url=base, headers=AUTH) as http,
        ):
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(bytes(8000 * 2 * 15)))

            async def in_progress() -> list[dict[str, Any]] | None:
                sessions: list[dict[str, Any]] = (await http.get("/v1/sessions")).json()
                return sessions if sessions and sessions[0]["status"] == "in-progress" else None

            # the media stream starts
            sessions = await eventually_async(in_progress, limit_s=10, every_s=0.05)
            call_id = sessions[0]["call_id"]
            url = f"/v1/calls/{call_id}/transfer"
            for destination in ("+88212345678", "+15550100202", "sip:desk@pbx.example.com"):
                refused = await http.post(url, json={"destination": destination})
                assert refused.status_code == 403, (destination, refused.text)
                assert "is not allowed" in refused.json()["error"]["message"]
                assert warnings_naming(caplog, destination), destination
            moved = await http.post(url, json={"destination": "billing"})
            assert moved.status_code == 200, moved.text
            (report,) = await twilio.wait_calls(timeout_s=20 * UNIT)
    assert report.dialed == ["+15550100201"]
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "transferred"
