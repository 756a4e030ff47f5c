"""``GET /v1/events`` read as a program reads it (httpx streaming, no browser): a call from
the Twilio emulator (answered by the OpenAI Realtime emulator) from start to end."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.e2e.harness import API_TOKEN, caller_pcm, openai_env, running_app, twilio_env

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT = [{"caller": "hello there", "say": "Hi! How can I help you today?"}]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) of each server-sent event; comments skipped."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif not line and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


async def test_a_call_from_start_to_end_on_the_event_stream(tmp_path: Path) -> None:
    audio = pcm16_to_ulaw(caller_pcm("hello there"))
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=60.0, max_call_s=90.0) as twilio,
        running_app(tmp_path, openai_env(oai) | twilio_env(twilio, "openai")) as (base, _s, _a),
        httpx.AsyncClient(base_url=base, timeout=30.0 * UNIT) as http,
    ):
        assert (await http.get("/v1/events")).status_code == 401
        async with http.stream("GET", "/v1/events", headers=AUTH) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse(response)
            kind, snapshot = await anext(events)
            assert (kind, snapshot) == ("snapshot", {"calls": []})
            dialled = time.monotonic()
            twilio.dial_in(f"{base}/twilio/voice", audio=audio)
            seen: dict[str, list[dict[str, Any]]] = {}
            call_id = ""
            async for kind, event in events:
                seen.setdefault(kind, []).append(event)
                if kind == "call.started":
                    assert time.monotonic() - dialled < 1.0 * UNIT
                    call_id = event["call_id"]
                    assert event["data"]["from"] == "+15005550006"
                    assert event["data"]["provider"] == "openai"
                texts = [e["data"]["text"] for e in seen.get("transcript", [])]
                if any("How can I help" in t for t in texts) and "turn.latency" in seen:
                    break
            hung = await http.post(f"/v1/calls/{call_id}/hangup", headers=AUTH)
            assert hung.status_code == 200
            async for kind, event in events:
                seen.setdefault(kind, []).append(event)
                if kind == "call.ended":
                    assert event["data"] == {"reason": "api_hangup"}
                    break
        await twilio.wait_calls(timeout_s=20 * UNIT)
    assert all(e["call_id"] == call_id for k in seen for e in seen[k])
    said = [(e["data"]["role"], e["data"]["text"]) for e in seen["transcript"]]
    assert ("agent", "Hello, thanks for calling.") in said
    assert ("caller", "hello there") in said
    partial = [e["data"] for e in seen["transcript.partial"] if e["data"]["text"]]
    assert any(p["role"] == "agent" and "How can" in p["text"] for p in partial)
    kinds = [e["data"]["kind"] for e in seen["timeline"]]
    assert "call.started" in kinds and "operator.hang_up" in kinds
    assert seen["turn.latency"][0]["data"]["latency_ms"] > 0
    assert any("status" in e["data"] for e in seen["call.updated"])


async def test_one_calls_stream_opens_with_its_recent_events(tmp_path: Path) -> None:
    audio = pcm16_to_ulaw(caller_pcm("hello there"))
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=60.0, max_call_s=90.0) as twilio,
        running_app(tmp_path, openai_env(oai) | twilio_env(twilio, "openai")) as (base, _s, _a),
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30.0 * UNIT) as http,
    ):
        twilio.dial_in(f"{base}/twilio/voice", audio=audio)
        async with http.stream("GET", "/v1/events", headers=AUTH) as response:
            async for kind, event in sse(response):
                if kind == "transcript":
                    call_id = event["call_id"]
                    break
        async with http.stream("GET", f"/v1/events?call_id={call_id}") as response:
            kind, snapshot = await anext(sse(response))
        assert kind == "snapshot"
        assert [c["call_id"] for c in snapshot["calls"]] == [call_id]
        assert any(e["type"] == "transcript" for e in snapshot["events"])
        assert all(e["call_id"] == call_id for e in snapshot["events"])
        assert (await http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
        await twilio.wait_calls(timeout_s=20 * UNIT)
