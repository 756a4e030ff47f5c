"""Event webhooks and post-call analysis end to end over loopback: a Twilio call through the app
to the OpenAI Realtime emulator, its events delivered to a receiver written here that verifies
every request with the Standard Webhooks reference library; the analysis by the Gemini emulator.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.emulators.gemini import GeminiEmulator
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.e2e.harness import (
    API_TOKEN,
    agent_book,
    caller_pcm,
    openai_env,
    place_twilio_call,
    running_app,
    twilio_env,
)
from tests.integrations.receiver import Receiver
from tests.waiting import eventually, eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SECRET = "whsec_" + base64.b64encode(b"e2e-webhook-signing-key-32-bytes").decode()
EXTRACT = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "open_at": {"type": "string"}},
    "required": ["topic", "open_at"],
}
ANALYSIS = {
    "summary": "The caller asked for the opening hours and was told nine to five.",
    "success": {"met": True, "reason": "The agent gave the hours."},
    "extracted": {"topic": "opening hours", "open_at": "09:00"},
}
FAST_RETRIES = {
    "SWITCHBOARD_WEBHOOK_RETRY_INITIAL_S": "0.05",
    "SWITCHBOARD_WEBHOOK_RETRY_MAX_S": "0.2",
}


async def test_a_calls_events_arrive_signed_once_each_and_in_order(tmp_path: Path) -> None:
    script: list[dict[str, Any]] = [
        {"caller": "when are you open", "say": "We are open nine to five."},
        {
            "caller": "put me through to the boss",
            "tool": {"name": "transfer_call", "arguments": {"destination": "+19005550123"}},
            "say": "I cannot transfer you there.",
        },
        {"caller": "ok bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
    ]
    agents = agent_book(
        analysis={"success": "the caller learnt the opening hours", "extract": EXTRACT}
    )
    async with (
        Receiver(SECRET, fail_first=2) as receiver,
        GeminiEmulator(script=[json.dumps(ANALYSIS)], api_key="g-key") as gemini,
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = (
            openai_env(oai)
            | twilio_env(twilio, "openai")
            | {"GEMINI_API_KEY": "g-key", "GEMINI_BASE_URL": gemini.base_url}
            | {"SWITCHBOARD_WEBHOOK_URL": receiver.url, "SWITCHBOARD_WEBHOOK_SECRET": SECRET}
            | FAST_RETRIES
        )
        async with running_app(tmp_path, env, agents=agents) as (base, _settings, _app):
            pcm = caller_pcm(
                "when are you open", "put me through to the boss", "ok bye",
                gap_ms=[1500, 1800, 4000],
            )  # fmt: skip
            report = await place_twilio_call(twilio, base, pcm)
            await eventually(
                lambda: {r.type for r in receiver.accepted} >= {"call.ended", "call.analyzed"},
                limit_s=20.0,
                what="call.ended and call.analyzed received",
            )
            auth = {"authorization": f"Bearer {API_TOKEN}"}
            async with httpx.AsyncClient(base_url=base, headers=auth) as api:
                deliveries = await eventually_async(
                    lambda: _all_delivered(api, 5), what="five deliveries delivered"
                )
                call_id = receiver.accepted[0].data["call_id"]
                call = (await api.get(f"/v1/calls/{call_id}")).json()
                retried = await api.post(f"/v1/webhooks/deliveries/{deliveries[0]['id']}/retry")
                missing = await api.post("/v1/webhooks/deliveries/999999/retry")
                await eventually(lambda: len(receiver.accepted) == 6, what="the resent event")
    assert report.violations == [] and oai.violations == [] and gemini.violations == []
    assert receiver.unverified == []
    assert [r.status for r in receiver.received[:2]] == [500, 500]
    first_five = receiver.accepted[:5]
    assert [r.type for r in first_five] == [
        "call.started",
        "call.answered",
        "tool.failed",
        "call.ended",
        "call.analyzed",
    ]
    assert len({r.id for r in first_five}) == 5  # each event exactly once
    assert {r.id for r in receiver.received[:2]} <= {r.id for r in first_five}
    assert {r.data["call_id"] for r in first_five} == {call_id}
    started, answered, failed, ended, analyzed = (r.data for r in first_five)
    assert started["carrier"] == "twilio" and started["agent"] == "frontdesk"
    assert "answered_at" in answered
    assert failed["name"] == "transfer_call" and failed["error"]
    assert ended["outcome"] == "agent_hangup" and ended["status"] == "completed"
    assert ended["duration_s"] > 0 and ended["cost"]["total"] > 0
    said = [(t["role"], t["text"]) for t in ended["transcript"]]
    assert ("agent", "We are open nine to five.") in said
    assert [t["name"] for t in ended["tool_calls"]] == ["transfer_call", "end_call"]
    assert analyzed["analysis"]["status"] == "done"
    assert analyzed["analysis"]["extracted"] == ANALYSIS["extracted"]
    assert call["analysis"]["summary"] == ANALYSIS["summary"]
    assert call["analysis"]["success"]["met"] is True
    # the API lists the deliveries; a retry by hand resends with the same webhook-id
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert sorted(d["attempts"] for d in deliveries)[-1] >= 2
    assert all("token" not in d["url"] for d in deliveries)
    assert retried.status_code == 200 and missing.status_code == 404
    assert receiver.accepted[5].id == deliveries[0]["event_id"]


async def _all_delivered(api: httpx.AsyncClient, n: int) -> list[dict[str, Any]] | None:
    page = (await api.get("/v1/webhooks/deliveries", params={"status": "delivered"})).json()
    return page["items"] if len(page["items"]) == n else None


async def test_without_a_text_llm_key_the_call_is_not_analysed(tmp_path: Path) -> None:
    """The agent asks for Gemini and there is no GEMINI_API_KEY. Its own receiver is down
    (port 9): that holds back only its own deliveries, not the server-wide receiver's."""
    script = [{"caller": "hello", "tool": {"name": "end_call", "arguments": {}}, "say": "Bye!"}]
    agents = agent_book(
        analysis={"summary": True, "provider": "gemini"},
        webhooks={"url": "http://127.0.0.1:9/x"},
    )
    async with (
        Receiver(SECRET) as receiver,
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = (
            openai_env(oai)
            | twilio_env(twilio, "openai")
            | {"GEMINI_API_KEY": "", "SWITCHBOARD_WEBHOOK_URL": receiver.url}
            | {"SWITCHBOARD_WEBHOOK_SECRET": SECRET, "SWITCHBOARD_WEBHOOK_EVENTS": "call.analyzed"}
        )
        async with running_app(tmp_path, env, agents=agents) as (base, _settings, _app):
            await place_twilio_call(twilio, base, caller_pcm("hello", gap_ms=3000))
            await eventually(lambda: receiver.accepted, limit_s=10.0, what="call.analyzed")
    [analyzed] = receiver.accepted  # only the events SWITCHBOARD_WEBHOOK_EVENTS names
    assert analyzed.type == "call.analyzed"
    assert analyzed.data["analysis"]["status"] == "not_analysed"
    assert analyzed.data["analysis"]["reason"] == "GEMINI_API_KEY is not set"
