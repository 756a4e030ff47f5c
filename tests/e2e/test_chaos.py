"""Chaos over loopback: a provider that sends garbage or closes with odd codes, and a carrier
media socket that goes silent without ever closing (half-open: no FIN, no close frame).

Every case ends the call cleanly with a reason in its record — never an unhandled exception,
never a call left open. (The database stopped mid-call is tests/e2e/test_database_outage.py.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from switchboard.audio import pcm16_to_ulaw
from switchboard.bridge.manager import CallManager
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator, twilio_signature
from tests.conftest import UNIT
from tests.e2e.harness import (
    caller_pcm,
    openai_env,
    read_only_call,
    running_app,
    twilio_env,
    until_said,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT: list[dict[str, Any]] = [
    {"caller": "hi", "say": "Hello there."},
    {"caller": "bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
]
GARBAGE = [
    "not json {",
    "[" * 50_000 + "]" * 50_000,  # once a RecursionError in the frame parser
    '{"type": 5}',
    '{"type": "response.output_audio.delta", "delta": 7}',
    '{"type": "response.output_audio_transcript.delta", "delta": null}',
    '{"type": "conversation.item.input_audio_transcription.completed", "transcript": []}',
    '{"type": "error", "error": "not an object"}',
    '{"type": "session.updated", "session": Infinity}',
]


async def test_a_provider_sending_garbage_does_not_end_the_call(tmp_path: Path) -> None:
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with running_app(tmp_path, env) as (base, _settings, _app):
            pcm = caller_pcm("hi", "bye", gap_ms=[3000, 4000], lead_ms=3000)
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await until_said(tmp_path, lambda said: len(said) >= 1)  # the greeting was heard
            for frame in GARBAGE:
                await oai.inject(frame)
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
    assert report.violations == [] and oai.violations == []
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "agent_hangup"  # the call went on to its goodbye
    said = [(t.role, t.text) for t in detail.transcript]
    assert said[-1] == ("agent", "Goodbye!")
    kinds = [e.kind for e in detail.timeline]
    assert kinds.count("provider.error") >= 1  # the garbage was noticed and recorded


@pytest.mark.parametrize("code", [1000, 4999])
async def test_a_provider_closing_with_an_odd_code_mid_call(tmp_path: Path, code: int) -> None:
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        fast = {"openai": {"backoff_base_s": 0.05, "max_reconnect_attempts": 3}}
        async with running_app(tmp_path, env, provider_options=fast) as (base, _s, app):
            pcm = caller_pcm("hi", "bye", gap_ms=[3000, 4000], lead_ms=3000)
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await until_said(tmp_path, lambda said: len(said) >= 1)
            await oai.drop_connections(code)
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
            manager = app.state.switchboard.calls
            assert isinstance(manager, CallManager)
            await eventually(lambda: not manager.calls, limit_s=10, what="the call released")
    assert report.violations == []
    detail = await read_only_call(tmp_path)
    assert detail.record.status in ("completed", "failed")
    assert detail.record.end_reason in ("agent_hangup", "provider_failed", "caller_hangup")
    kinds = [e.kind for e in detail.timeline]
    assert "provider.reconnecting" in kinds or detail.record.end_reason == "provider_failed"


async def test_a_half_open_carrier_socket_is_ended_by_the_server(tmp_path: Path) -> None:
    # Nothing after the first frames: no media, no mark echoes, no stop, no close, no FIN.
    # Regression: the bridge waited for the greeting's marks forever, and the call (and its
    # billed provider session) stayed up until the agent's time limit.
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        env["SWITCHBOARD_MEDIA_IDLE_TIMEOUT_S"] = str(2 * UNIT)
        async with running_app(tmp_path, env) as (base, _settings, app):
            manager = app.state.switchboard.calls
            assert isinstance(manager, CallManager)
            sid = "CA" + "c" * 32
            form = {"CallSid": sid, "AccountSid": twilio.account_sid, "From": "+15550001",
                    "To": "+15550002", "Direction": "inbound"}  # fmt: skip
            url = f"{base}/twilio/voice"
            async with httpx.AsyncClient(timeout=10 * UNIT) as http:
                twiml = await http.post(
                    url,
                    data=form,
                    headers={
                        "X-Twilio-Signature": twilio_signature(twilio.auth_token, url, form.items())
                    },
                )
            assert twiml.status_code == 200
            params = dict(re.findall(r'<Parameter name="([^"]+)" value="([^"]+)"', twiml.text))
            stream_url = re.search(r'<Stream url="([^"]+)"', twiml.text)
            assert stream_url is not None and set(params) == {"call_id", "token"}
            _reader, writer = await _half_open_stream(
                stream_url.group(1), twilio.auth_token, sid, params
            )
            await eventually(
                lambda: any(c.session is not None for c in manager.calls.values()),
                what="the call bridged",
            )
            # The caller side now says nothing and never closes: the server must end the call.
            await eventually(lambda: not manager.calls, limit_s=10, what="the call ended")
            writer.transport.abort()
    detail = await read_only_call(tmp_path)
    assert detail.record.status == "completed"
    assert detail.record.end_reason == "caller_hangup"  # the carrier side is gone
    assert oai.violations == []


async def _half_open_stream(
    url: str, auth_token: str, sid: str, params: dict[str, str]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A Twilio media socket opened by hand (sans-I/O websockets over a raw TCP stream) that
    sends ``connected``, ``start`` and half a second of media, then nothing, ever."""
    uri = parse_uri(url)
    protocol = ClientProtocol(uri)
    request = protocol.connect()
    request.headers["X-Twilio-Signature"] = twilio_signature(auth_token, url, ())
    protocol.send_request(request)
    reader, writer = await asyncio.open_connection(uri.host, uri.port)
    writer.write(b"".join(protocol.data_to_send()))
    while not protocol.events_received() and protocol.handshake_exc is None:
        protocol.receive_data(await reader.read(65536))
    assert protocol.handshake_exc is None, protocol.handshake_exc
    stream = "MZ" + "d" * 32
    frames: list[dict[str, Any]] = [
        {"event": "connected", "protocol": "Call", "version": "1.0.0"},
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream,
            "start": {
                "streamSid": stream,
                "callSid": sid,
                "accountSid": "AC1",
                "tracks": ["inbound"],
                "customParameters": params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        },
    ]
    payload = base64.b64encode(b"\xff" * 160).decode()
    frames += [
        {
            "event": "media",
            "sequenceNumber": str(2 + i),
            "streamSid": stream,
            "media": {
                "track": "inbound",
                "chunk": str(1 + i),
                "timestamp": str(20 * i),
                "payload": payload,
            },
        }
        for i in range(25)
    ]
    for frame in frames:
        protocol.send_text(json.dumps(frame).encode())
    writer.write(b"".join(protocol.data_to_send()))
    await writer.drain()
    return reader, writer
