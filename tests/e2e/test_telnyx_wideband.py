"""Telnyx calls with ``stream_codec`` OPUS and G722, end to end through each provider emulator.

The agent chooses the codec (``carrier_codec``); the Telnyx emulator speaks it with its own
codec instances (PyAV) and the framing of the carrier's published formats. Each call is the
pairs test's call — greeting, a turn, the ``end_call`` tool, hang-up — and what the caller
heard is checked by correlation against the greeting the provider emulator synthesised; with
OpenAI (whose emulator records every client event) what the provider received is checked
against what the caller said.
"""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest

from switchboard.audio import convert
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.providers.base import AudioChunk, AudioFormat
from tests.audio.signals import Samples, best_match
from tests.e2e.harness import (
    agent_book,
    caller_pcm,
    caller_wav,
    read_only_call,
    running_app,
    telnyx_env,
)
from tests.e2e.test_pairs import (
    GAPS,
    UTTERANCES,
    check_record_and_transcript,
    provider_env,
    telnyx_call,
)
from tests.pyav import needs_av

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, needs_av]

GREETING = "Hello, thanks for calling."


@pytest.mark.parametrize("provider", ["openai", "gemini", "deepgram"])
@pytest.mark.parametrize("codec", ["opus", "g722"])
async def test_telnyx_wideband_call(tmp_path: Path, codec: str, provider: str) -> None:
    async with AsyncExitStack() as stack, provider_env(provider, stack) as providers:
        telnyx = await stack.enter_async_context(TelnyxEmulator(tail_ms=8000))
        env = providers.env | telnyx_env(telnyx, provider)
        book = agent_book(carrier_codec=codec, greeting=GREETING)
        async with running_app(tmp_path, env, agents=book) as (base, _settings, _app):
            audio = caller_wav(*UTTERANCES, gap_ms=GAPS, rate=16000)
            report = await telnyx_call(telnyx, base, audio, 40)
        received = _provider_input(providers.openai) if providers.openai else None
    assert report.violations == []
    assert "hangup" in report.commands
    assert report.heard_rate == 16000
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "agent_hangup"
    check_record_and_transcript([(t.role, t.text) for t in detail.transcript])
    assert [t.name for t in detail.tool_calls] == ["end_call"]
    # the greeting's first 600 ms, as the emulator synthesised it, is in what was heard: each
    # 100 ms piece is looked for (a late frame on a loaded machine plays a gap, not the codec's
    # fault), and most must be found nearly intact (the codecs alone score above 0.99)
    reference = np.frombuffer(speech_like_pcm16(GREETING, 16000)[: 2 * 9600], dtype="<i2")
    heard = np.frombuffer(report.heard_pcm, dtype="<i2")[: 16000 * 6]
    scores = [best_match(reference[i : i + 1600], heard) for i in range(0, 9600, 1600)]
    assert float(np.median(scores)) > 0.95, scores
    if received is not None:  # the caller's first words, as OpenAI received them
        said = np.frombuffer(caller_pcm(UTTERANCES[0], lead_ms=0, gap_ms=0, rate=16000), "<i2")
        found = [best_match(said[i : i + 1600], received) for i in range(0, 9600, 1600)]
        assert float(np.median(found)) > 0.95, found


def _provider_input(oai: OpenAIRealtimeEmulator) -> Samples:
    """Every ``input_audio_buffer.append`` the emulator received, as PCM16 16 kHz."""
    chunks = [e["audio"] for e in oai.received if e.get("type") == "input_audio_buffer.append"]
    raw = b"".join(base64.b64decode(c) for c in chunks)
    assert raw, "the provider received no caller audio"
    # a PCM16 carrier spec gives OpenAI its PCM16 at 24 kHz (audio/pcm)
    pcm = convert(AudioChunk(raw, AudioFormat.PCM16, 24000), AudioFormat.PCM16, 16000).data
    return np.frombuffer(pcm, dtype="<i2")
