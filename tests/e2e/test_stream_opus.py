"""``WS /v1/stream`` in Opus: raw packets in (as WebCodecs sends them), 20 ms packets out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets

from switchboard.audio import OpusDecoder, OpusEncoder
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from tests.audio.signals import best_match
from tests.conftest import UNIT
from tests.e2e.harness import API_TOKEN, openai_env, running_app
from tests.pyav import needs_av

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, needs_av]

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
REPLY = "Hello from the stream."


async def test_stream_session_in_opus(tmp_path: Path) -> None:
    script = [{"caller": "hello there", "say": REPLY}]
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        running_app(tmp_path, openai_env(oai) | {"SWITCHBOARD_PROVIDER": "openai"}) as (
            base,
            _s,
            _a,
        ),
    ):
        url = base.replace("http://", "ws://") + "/v1/stream"
        async with websockets.connect(url, additional_headers=AUTH) as ws:
            start = {"type": "start", "provider": "openai", "format": "opus", "sample_rate": 16000}
            await ws.send(json.dumps(start))
            assert json.loads(await ws.recv())["type"] == "started"
            await ws.send(b"\x4b\x03\xff")  # not an Opus packet: an error, the session goes on
            error = json.loads(await asyncio.wait_for(ws.recv(), 10 * UNIT))
            assert error["type"] == "error" and "Opus" in error["message"]
            speech = speech_like_pcm16("hello there", 16000, ms_per_char=45.0)
            encoder = OpusEncoder(16000)
            for packet in encoder.encode(speech + bytes(32000)) + encoder.flush():
                await ws.send(packet)  # one packet per binary message
                await asyncio.sleep(0.002)
            packets: list[bytes] = []
            events: list[dict[str, Any]] = []
            while not any(e["type"] == "response.done" for e in events):
                message = await asyncio.wait_for(ws.recv(), 10 * UNIT)
                if isinstance(message, bytes):
                    packets.append(message)
                else:
                    events.append(json.loads(message))
            await ws.send(json.dumps({"type": "stop"}))
    finals = [e["text"] for e in events if e["type"] == "text.output" and e["final"]]
    assert REPLY in finals
    decoder = OpusDecoder(16000)
    heard = np.frombuffer(b"".join(decoder.decode(p) for p in packets), dtype="<i2")
    assert len(heard) >= 16000 * 0.5  # the reply came back as 20 ms packets
    assert len(packets) * 320 - len(heard) <= 64  # 20 ms each, less the resampler's hold
    reference = np.frombuffer(speech_like_pcm16(REPLY, 16000)[: 2 * 4800], dtype="<i2")
    assert best_match(reference, heard) > 0.95  # the agent's voice, through Opus
