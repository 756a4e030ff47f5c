"""Thinking audio end to end: Twilio or Telnyx caller → app → OpenAI emulator, 2.5 s tool.

What the caller heard is measured: the generated thinking sound starts once the tool has run
700 ms, plays as a continuous loop, and the agent's reply follows it directly — its first
frame ends the sound (``thinking.stopped`` ``reply``, the played length matching the heard
audio).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from switchboard.agents import AgentBook
from switchboard.audio import encode_audio, pcm16_to_ulaw, read_audio_file, ulaw_to_pcm16
from switchboard.bridge.thinking import thinking_sound
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.media import AudioFormat, AudioSpec
from tests.audio.signals import best_match, correlation, samples
from tests.conftest import UNIT
from tests.e2e.harness import (
    agent_book,
    caller_pcm,
    openai_env,
    openai_twilio_app,
    read_only_call,
    running_app,
    telnyx_env,
)
from tests.pyav import needs_av

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

REPLY = "Yes, the red chair is in stock."


def onset(reference: np.ndarray, heard: np.ndarray) -> tuple[int, float]:
    """Where ``reference`` starts in ``heard`` (sample index) and how well it matches."""
    ref = reference.astype(np.float64)
    rec = heard.astype(np.float64)
    dots = np.correlate(rec, ref, "valid")
    energy = np.convolve(rec * rec, np.ones(len(ref)), "valid")
    scores = dots / np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(ref, ref)))
    at = int(np.argmax(scores))
    return at, float(scores[at])


SCRIPT = [
    {
        "caller": "is the red chair in stock",
        "tool": {"name": "check_stock", "arguments": {"item": "red chair"}},
        "say": REPLY,
    }
]


async def telnyx_call(tmp_path: Path, book: AgentBook, pcm: bytes) -> tuple[Any, Any, bytes]:
    """One inbound Telnyx call saying ``pcm``: (report, OpenAI emulator, heard PCM16 8 kHz)."""
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TelnyxEmulator(realtime=True, tail_ms=4000) as telnyx,
    ):
        env = openai_env(oai) | telnyx_env(telnyx, "openai")
        async with running_app(tmp_path, env, agents=book) as (base, _settings, _app):
            call = await telnyx.place_inbound_call(
                to="+15550100000",
                from_="+15550111111",
                audio=_wav(pcm),
                webhook_url=f"{base}/telnyx/webhook",
            )
            report = await call.wait(40 * UNIT)
    assert report.heard_rate == 8000
    return report, oai, report.heard_pcm


def _wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(pcm)
    return out.getvalue()


@pytest.mark.parametrize("carrier", ["twilio", "telnyx"])
async def test_thinking_sound_plays_during_a_slow_tool_and_stops_at_the_reply(
    tmp_path: Path, carrier: str
) -> None:
    book = agent_book(tools=["end_call", "check_stock"], tool_modules=["tests.e2e.slow_tools"])
    heard_path = tmp_path / "heard.wav"
    pcm = caller_pcm("is the red chair in stock", gap_ms=7000)
    if carrier == "twilio":
        async with openai_twilio_app(tmp_path, SCRIPT, agents=book) as (oai, twilio, base):
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm), out=heard_path)
            (report,) = await twilio.wait_calls(timeout_s=40)
        heard_pcm = read_audio_file(heard_path, 8000)
    else:
        report, oai, heard_pcm = await telnyx_call(tmp_path, book, pcm)
    assert report.violations == [] and oai.violations == []
    detail = await read_only_call(tmp_path)
    assert ("agent", REPLY) in [(t.role, t.text) for t in detail.transcript]
    events = {e.kind: e.data for e in detail.timeline}
    assert "thinking.started" in events
    stopped = events["thinking.stopped"]
    assert stopped["reason"] == "reply"
    assert 1000 <= stopped["played_ms"] <= 3500, stopped  # ~2.5 s tool - 0.7 s + the reply's start

    heard = samples(heard_pcm)
    loop = samples(ulaw_to_pcm16(thinking_sound(AudioSpec(AudioFormat.ULAW, 8000))))
    start, score = onset(loop[:3200], heard)  # the loop's first 400 ms: both notes
    assert score > 0.95, score
    reply = samples(speech_like_pcm16(REPLY, 8000, ms_per_char=30.0))
    reply_at, reply_score = onset(reply[:4000], heard)
    assert reply_score > 0.9, reply_score
    gap = reply_at - start  # samples of thinking sound the caller heard before the reply
    assert abs(gap / 8 - stopped["played_ms"]) <= 60, (gap / 8, stopped)
    tiled = np.tile(loop, gap // len(loop) + 1)[:gap]
    assert correlation(heard[start:reply_at], tiled) > 0.95  # the loop, unbroken, to the reply


@needs_av
async def test_an_agents_ogg_opus_thinking_audio_is_what_the_caller_hears(tmp_path: Path) -> None:
    sound = speech_like_pcm16("one moment please", 16000, ms_per_char=60.0)
    path = tmp_path / "thinking.ogg"
    path.write_bytes(encode_audio(sound, 16000, "ogg"))
    book = agent_book(
        tools=["end_call", "check_stock"],
        tool_modules=["tests.e2e.slow_tools"],
        thinking_audio=str(path),
    )
    heard_path = tmp_path / "heard.wav"
    async with openai_twilio_app(tmp_path, SCRIPT, agents=book) as (_oai, twilio, base):
        pcm = caller_pcm("is the red chair in stock", gap_ms=7000)
        twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm), out=heard_path)
        (report,) = await twilio.wait_calls(timeout_s=40)
    assert report.violations == []
    detail = await read_only_call(tmp_path)
    assert {e.kind: e.data for e in detail.timeline}["thinking.stopped"]["reason"] == "reply"
    heard = samples(read_audio_file(heard_path, 8000))
    reference = samples(speech_like_pcm16("one moment please", 8000, ms_per_char=60.0))
    scores = [best_match(reference[i : i + 800], heard) for i in range(0, 4800, 800)]
    assert float(np.median(scores)) > 0.9, scores  # Opus → μ-law 8 kHz, still the file
