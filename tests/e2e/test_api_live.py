"""The REST API's live-call side over loopback: outbound calls, sessions, hang-up, the stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    openai_env,
    read_only_call,
    running_app,
    twilio_env,
    until_said,
)
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def env_for(oai: OpenAIRealtimeEmulator, twilio: TwilioEmulator) -> dict[str, str]:
    return openai_env(oai) | twilio_env(twilio, "openai")


async def test_outbound_call_sessions_and_api_hangup(tmp_path: Path) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
        running_app(
            tmp_path, env_for(oai, twilio) | {"SWITCHBOARD_OUTBOUND_ALLOW": "+15550100999"}
        ) as (base, _s, _a),
        httpx.AsyncClient(base_url=base, headers=AUTH) as http,
    ):
        bad = await http.post("/v1/calls", json={"carrier": "twilio", "to": "12", "from": "x"})
        assert bad.status_code == 422
        assert "to" in bad.json()["error"]["message"]
        placed = await http.post(
            "/v1/calls",
            json={"carrier": "twilio", "to": "+15550100999", "from": "+15550100000"},
        )
        assert placed.status_code == 201, placed.text
        call_id = placed.json()["call_id"]

        async def in_progress() -> list[dict[str, Any]] | None:
            sessions: list[dict[str, Any]] = (await http.get("/v1/sessions")).json()
            return sessions if sessions and sessions[0]["status"] == "in-progress" else None

        # the callee answers, the media stream starts
        sessions = await eventually_async(in_progress, what="an in-progress session", every_s=0.05)
        assert [s["call_id"] for s in sessions] == [call_id]
        assert sessions[0]["direction"] == "outbound" and sessions[0]["provider"] == "openai"
        await until_said(
            tmp_path, lambda said: ("agent", "Hello, thanks for calling.") in said
        )  # the greeting has played
        hung = await http.post(f"/v1/calls/{call_id}/hangup")
        assert hung.status_code == 200
        missing = await http.post("/v1/calls/call_nope/hangup")
        assert missing.status_code == 404
        (report,) = await twilio.wait_calls(timeout_s=20 * UNIT)
        assert report.heard_ms > 500
        assert (await http.get("/v1/sessions")).json() == []
    detail = await read_only_call(tmp_path)
    assert detail.record.id == call_id
    assert detail.record.direction == "outbound"
    assert detail.record.end_reason == "api_hangup"


async def test_stream_websocket_speaks_with_a_provider(tmp_path: Path) -> None:
    script = [{"caller": "hello there", "say": "Hello from the stream."}]
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
        running_app(tmp_path, env_for(oai, twilio)) as (base, _s, _a),
    ):
        url = base.replace("http://", "ws://") + "/v1/stream"
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(url):
                pass
        async with websockets.connect(url, additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"type": "start", "provider": "openai", "sample_rate": 16000}))
            started = json.loads(await ws.recv())
            assert started["type"] == "started" and started["provider"] == "openai"
            speech = speech_like_pcm16("hello there", 16000, ms_per_char=45.0)
            silence = bytes(16000 * 2)  # one second, so server VAD ends the turn
            for i in range(0, len(speech + silence), 640):
                await ws.send((speech + silence)[i : i + 640])
                await asyncio.sleep(0.002)
            audio = 0
            events: list[dict[str, Any]] = []
            while not any(e["type"] == "response.done" for e in events):
                message = await asyncio.wait_for(ws.recv(), 10 * UNIT)
                if isinstance(message, bytes):
                    audio += len(message)
                else:
                    events.append(json.loads(message))
            await ws.send(json.dumps({"type": "stop"}))
    kinds = [e["type"] for e in events]
    assert "caller.transcript" in kinds and "text.output" in kinds
    finals = [e["text"] for e in events if e["type"] == "text.output" and e["final"]]
    assert "Hello from the stream." in finals
    assert audio > 16000  # at least half a second of 16 kHz PCM16 came back
