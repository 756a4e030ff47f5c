"""A load-test smoke run of Telnyx calls in L16 both ways (16 kHz, measured by position): the
app resamples each leg to and from OpenAI's 24 kHz with the FIR (3/2), which holds nothing
back, so every 20 ms sent comes back and the round trip stays that of μ-law."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.loadtest import LoadOptions, run_load
from switchboard.loadtest.telnyx import L16Frames, new_telnyx_seed
from tests.e2e.harness import agent_book, running_app
from tests.loadtest.test_smoke import _free_port, _telnyx_env

pytestmark = pytest.mark.anyio


def test_l16_frames_are_20_ms_of_voice_in_the_wire_byte_order() -> None:
    big, little = L16Frames(16000, "big"), L16Frames(16000, "little")
    frame = big.frame(3)
    assert len(frame) == 640 and big.duration_ms(frame) == 20.0
    assert frame == np.frombuffer(little.frame(3), "<i2").astype(">i2").tobytes()
    assert big.frame(3 + 50) == frame  # one second, round and round
    assert 0 < np.abs(np.frombuffer(little.frame(3), "<i2")).max() < 1000  # quiet, not silent


@pytest.mark.e2e
async def test_three_telnyx_l16_calls_lose_nothing_and_hold_nothing(tmp_path: Path) -> None:
    seed, port = new_telnyx_seed(), _free_port()
    book = agent_book(
        greeting=None, reprompt=None, limits={"max_call_seconds": 120}, carrier_codec="l16"
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
            telnyx_codec="L16",
            calls=3,
            duration_s=3.0,
            ramp_s=0.3,
            drain_s=3.0,  # a loaded CI machine lags: let every echo come back before hanging up
            pid=os.getpid(),
        )
        report = await run_load(options)
    assert report.errors == []
    assert report.calls_ok == 3 and report.calls_failed == 0
    assert report.mode == "position"  # resampled: no tag survives
    assert report.frames_sent == 3 * 150
    assert report.frames_lost == 0 and report.frames_queued == 0
    assert report.round_trip.count == report.frames_sent
    assert oai.violations == []
