"""The Deepgram emulator over loopback, checked against the deepgram SDK's message types."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from deepgram.listen.v1.types import (
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)
from deepgram.speak.v1.types import SpeakV1Cleared, SpeakV1Flushed, SpeakV1Metadata
from tests.conformance import conform
from tests.conftest import UNIT
from tests.waiting import printed
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.deepgram import IDLE_CLOSE_CODE, DeepgramEmulator, run

KEY = "dg-test-key"
AUTH = {"Authorization": f"Token {KEY}"}
LISTEN_Q = (
    "model=nova-2&encoding=mulaw&sample_rate=8000&channels=1&interim_results=true"
    "&punctuate=true&endpointing=300&utterance_end_ms=1000&vad_events=true"
)
SDK_TYPES: dict[str, Any] = {
    "Results": ListenV1Results,
    "SpeechStarted": ListenV1SpeechStarted,
    "UtteranceEnd": ListenV1UtteranceEnd,
    "Metadata": ListenV1Metadata,
}


def caller_audio(text: str, silence_ms: int = 1500) -> bytes:
    """μ-law 8 kHz: speech-like audio for ``text`` then silence."""
    return pcm16_to_ulaw(speech_like_pcm16(text, 8000) + b"\x00\x00" * (8 * silence_ms))


async def send_frames(ws: ClientConnection, audio: bytes) -> None:
    for i in range(0, len(audio), 160):
        await ws.send(audio[i : i + 160])


async def read_until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        raw = await ws.recv()
        assert isinstance(raw, str)
        message = json.loads(raw)
        conform(SDK_TYPES[message["type"]], message)  # conforms to the SDK's types
        out.append(message)
        if message["type"] == kind:
            return out


async def drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


@pytest.mark.anyio
async def test_listen_utterance_results_and_close() -> None:
    async with DeepgramEmulator(api_key=KEY, script=[{"caller": "what are your hours"}]) as emu:
        url = f"ws://127.0.0.1:{emu.port}/v1/listen?{LISTEN_Q}"
        async with connect(url, additional_headers=AUTH) as ws:
            await send_frames(ws, caller_audio("what are your hours"))
            messages = await read_until(ws, "UtteranceEnd")
            kinds = [m["type"] for m in messages]
            assert kinds[0] == "SpeechStarted"
            finals = [m for m in messages if m["type"] == "Results" and m["is_final"]]
            interims = [m for m in messages if m["type"] == "Results" and not m["is_final"]]
            assert interims
            assert len(finals) == 1
            assert finals[0]["speech_final"] is True
            assert finals[0]["channel"]["alternatives"][0]["transcript"] == "What are your hours."
            assert kinds.index("UtteranceEnd") > kinds.index("Results")
            await ws.send(json.dumps({"type": "CloseStream"}))
            tail = await read_until(ws, "Metadata")
            assert tail[-1]["duration"] > 2.0
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1000
        assert emu.listen_controls == [{"type": "CloseStream"}]
        assert emu.violations == []


@pytest.mark.anyio
async def test_listen_finalize_and_idle_close() -> None:
    async with DeepgramEmulator(
        script=[{"caller": "hello there"}], idle_timeout_s=0.3 * UNIT
    ) as emu:
        url = f"ws://127.0.0.1:{emu.port}/v1/listen?{LISTEN_Q}"
        async with connect(url, additional_headers=AUTH) as ws:
            await send_frames(ws, caller_audio("hello there", silence_ms=0))
            await ws.send(json.dumps({"type": "Finalize"}))
            messages = await read_until(ws, "Results")
            while not messages[-1]["is_final"]:
                messages += await read_until(ws, "Results")
            assert messages[-1]["from_finalize"] is True
            assert messages[-1]["channel"]["alternatives"][0]["transcript"] == "Hello there."
            await ws.send(json.dumps({"type": "KeepAlive"}))
            with pytest.raises(ConnectionClosed) as closed:
                await drain(ws)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == IDLE_CLOSE_CODE
            assert "NET-0001" in closed.value.rcvd.reason
        assert emu.idle_closes == 1
        assert emu.violations == []


@pytest.mark.anyio
async def test_rejects_bad_key_and_bad_params() -> None:
    async with DeepgramEmulator(api_key=KEY) as emu:
        base = f"ws://127.0.0.1:{emu.port}"
        with pytest.raises(InvalidStatus) as denied:
            async with connect(
                f"{base}/v1/listen?{LISTEN_Q}", additional_headers={"Authorization": "Token bad"}
            ):
                pass
        assert denied.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as bad:
            async with connect(f"{base}/v1/listen?encoding=mulaw", additional_headers=AUTH):
                pass
        assert bad.value.response.status_code == 400
        with pytest.raises(InvalidStatus) as bad_speak:
            async with connect(f"{base}/v1/speak?sample_rate=11025", additional_headers=AUTH):
                pass
        assert bad_speak.value.response.status_code == 400


@pytest.mark.anyio
async def test_speak_websocket_flush_and_clear() -> None:
    async with DeepgramEmulator(api_key=KEY, speed=20.0) as emu:
        url = f"ws://127.0.0.1:{emu.port}/v1/speak?model=aura-asteria-en&encoding=mulaw&sample_rate=8000"
        async with connect(url, additional_headers=AUTH) as ws:
            conform(SpeakV1Metadata, json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "Speak", "text": "Hello there."}))
            await ws.send(json.dumps({"type": "Flush"}))
            audio = b""
            while isinstance(raw := await ws.recv(), bytes):
                audio += raw
            flushed = json.loads(raw)
            conform(SpeakV1Flushed, flushed)
            assert flushed == {"type": "Flushed", "sequence_id": 0}
            assert len(audio) == int(len("Hello there.") * 60 * 8)  # 60 ms a character, μ-law
            await ws.send(json.dumps({"type": "Speak", "text": "A long sentence " * 20}))
            await ws.send(json.dumps({"type": "Flush"}))
            assert isinstance(await ws.recv(), bytes)
            await ws.send(json.dumps({"type": "Clear"}))
            while isinstance(raw := await ws.recv(), bytes):
                pass
            cleared = json.loads(raw)
            conform(SpeakV1Cleared, cleared)
            assert cleared["type"] == "Cleared"
            await ws.send(json.dumps({"type": "Close"}))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert [m["type"] for m in emu.speak_messages] == [
            "Speak",
            "Flush",
            "Speak",
            "Flush",
            "Clear",
            "Close",
        ]
        assert emu.violations == []


@pytest.mark.anyio
async def test_speak_rest_wav_default_and_raw() -> None:
    async with DeepgramEmulator(api_key=KEY) as emu, httpx.AsyncClient() as client:
        url = f"{emu.base_url}/v1/speak"
        wav = await client.post(
            url, params={"model": "aura-asteria-en"}, json={"text": "Hi."}, headers=AUTH
        )
        assert wav.status_code == 200
        assert wav.content[:4] == b"RIFF"
        assert len(wav.content) == 44 + (3 * 60 * 24) * 2  # linear16 24 kHz default
        raw = await client.post(
            url,
            params={"encoding": "mulaw", "sample_rate": "8000", "container": "none"},
            json={"text": "Hi."},
            headers=AUTH,
        )
        assert raw.content[:4] != b"RIFF"
        assert len(raw.content) == 3 * 60 * 8
        denied = await client.post(url, json={"text": "Hi."}, headers={"Authorization": "Token x"})
        assert denied.status_code == 401
        assert "err_code" in denied.json()
        assert [r["text"] for r in emu.rest_requests] == ["Hi.", "Hi."]


@pytest.mark.anyio
async def test_run_serves_until_cancelled(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(run(port=0, script=[{"caller": "hi"}], idle_timeout_s=5))
    url = (await printed(capsys, "http://")).strip()
    assert url.startswith("deepgram emulator: http://127.0.0.1:")
    async with httpx.AsyncClient() as client:
        base = url.split(": ", 1)[1]
        reply = await client.post(f"{base}/v1/speak", json={"text": "Hi."}, headers=AUTH)
        assert reply.status_code == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
