"""A load-test smoke run of Telnyx calls in Opus both ways (measured by position)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.loadtest import LoadOptions, run_load
from switchboard.loadtest.telnyx import new_telnyx_seed
from tests.e2e.harness import agent_book, running_app
from tests.loadtest.test_smoke import _free_port, _telnyx_env
from tests.pyav import needs_av

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, needs_av]


async def test_three_telnyx_opus_calls_lose_nothing(tmp_path: Path) -> None:
    seed, port = new_telnyx_seed(), _free_port()
    book = agent_book(
        greeting=None, reprompt=None, limits={"max_call_seconds": 120}, carrier_codec="opus"
    )
    async with (
        OpenAIRealtimeEmulator(echo=True, record=False) as oai,
        running_app(tmp_path, _telnyx_env(oai, seed, port), agents=book) as (base, _s, _a),
    ):
        options = LoadOptions(
            server=base,
            carrier="telnyx",
            telnyx_key_b64=seed,
            telnyx_port=port,
            telnyx_api_key="KEY_LOADTEST",
            telnyx_codec="OPUS",
            calls=3,
            duration_s=3.0,
            ramp_s=0.3,
            drain_s=3.0,  # a loaded CI machine lags: let every echo come back before hanging up
            pid=os.getpid(),
        )
        report = await run_load(options)
    assert report.errors == []
    assert report.calls_ok == 3 and report.calls_failed == 0
    assert report.mode == "position"  # no tag survives Opus
    assert report.frames_sent == 3 * 150
    # every 20 ms sent came back as 20 ms of Opus, but for what the codecs and resamplers
    # (OpenAI's PCM is 24 kHz) still hold when the caller hangs up (≤ 100 ms)
    assert report.frames_lost == 0 and report.frames_queued <= 3 * 5
    assert report.round_trip.count >= report.frames_sent - 3 * 5
    assert oai.violations == []
