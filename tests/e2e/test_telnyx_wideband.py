"""Telnyx calls with ``stream_codec`` OPUS and G722, end to end through each provider emulator.

The agent chooses the codec (``carrier_codec``); the Telnyx emulator speaks it with its own
codec instances (PyAV) and the framing of the carrier's published formats. Each call is the
pairs test's call — greeting, a turn, the ``end_call`` tool, hang-up — and what the caller
heard is checked by correlation against the greeting the provider emulator synthesised.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest

from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.telnyx import TelnyxEmulator
from tests.audio.signals import best_match
from tests.e2e.harness import agent_book, caller_wav, read_only_call, running_app, telnyx_env
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
