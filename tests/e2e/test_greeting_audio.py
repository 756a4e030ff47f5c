"""A recorded MP3 greeting (``greeting_audio`` in the agent profile) played to a Twilio caller."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest

from switchboard.audio import encode_audio, pcm16_to_ulaw, read_audio_file
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.twilio import TwilioEmulator
from tests.audio.signals import best_match
from tests.e2e.harness import agent_book, caller_pcm, read_only_call, running_app, twilio_env
from tests.e2e.test_pairs import GAPS, UTTERANCES, check_record_and_transcript, provider_env
from tests.pyav import needs_av

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, needs_av]

RECORDED = "this is the recorded greeting of the front desk"


async def test_mp3_greeting_is_played_to_a_twilio_caller(tmp_path: Path) -> None:
    greeting = tmp_path / "greeting.mp3"
    greeting.write_bytes(encode_audio(speech_like_pcm16(RECORDED, 16000), 16000, "mp3"))
    heard_path = tmp_path / "heard.wav"
    async with AsyncExitStack() as stack, provider_env("openai", stack) as providers:
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = providers.env | twilio_env(twilio, "openai")
        book = agent_book(greeting_audio=str(greeting), greeting="Hello, thanks for calling.")
        async with running_app(tmp_path, env, agents=book) as (base, _settings, _app):
            pcm = caller_pcm(*UTTERANCES, gap_ms=GAPS, lead_ms=3500)  # after the greeting
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm), out=heard_path)
            (report,) = await twilio.wait_calls(timeout_s=40)
    assert report.violations == []
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "agent_hangup"
    # the greeting's text stands for the recording in the transcript; the provider spoke none
    check_record_and_transcript([(t.role, t.text) for t in detail.transcript])
    heard = np.frombuffer(read_audio_file(heard_path, 8000), dtype="<i2")[: 8000 * 6]
    reference = np.frombuffer(speech_like_pcm16(RECORDED, 8000)[: 2 * 4800], dtype="<i2")
    scores = [best_match(reference[i : i + 800], heard) for i in range(0, 4800, 800)]
    assert float(np.median(scores)) > 0.95, scores  # MP3 → μ-law 8 kHz, still the recording
