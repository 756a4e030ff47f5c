"""Load-test smoke runs of Telnyx calls in a wideband codec both ways, measured by position
(no tag survives): Opus, decoded and encoded at OpenAI's 24 kHz, and L16 at 16 kHz, resampled
16k↔24k by the FIR (3/2), which holds nothing back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.loadtest import run_load
from switchboard.loadtest.telnyx import L16Frames, new_telnyx_seed
from tests.e2e.harness import agent_book, running_app
from tests.loadtest.test_smoke import _free_port, _telnyx_env, _telnyx_options
from tests.pyav import needs_av

pytestmark = pytest.mark.anyio


def test_l16_frames_are_20_ms_of_voice_in_the_wire_byte_order() -> None:
    big, little = L16Frames(16000, "big"), L16Frames(16000, "little")
    frame = big.frame(3)
    assert len(frame) == 640 and big.duration_ms(frame) == 20.0
    assert frame == np.frombuffer(little.frame(3), "<i2").astype(">i2").tobytes()
    assert big.frame(3 + 50) == frame  # one second, round and round
    assert 0 < np.abs(np.frombuffer(little.frame(3), "<i2")).max() < 1000  # quiet, not silent


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("codec", "held"),
    [
        # what Opus's codecs still hold when the caller hangs up (≤ 100 ms a call)
        pytest.param("OPUS", 5, marks=needs_av),
        # the FIR gives every piece out at once (soxr's 16k↔24k stream held 4 frames a call)
        ("L16", 0),
    ],
)
async def test_three_wideband_telnyx_calls_lose_nothing(
    tmp_path: Path, codec: str, held: int
) -> None:
    seed, port = new_telnyx_seed(), _free_port()
    book = agent_book(
        greeting=None,
        reprompt=None,
        limits={"max_call_seconds": 120},
        carrier_codec=codec.lower(),
    )
    async with (
        OpenAIRealtimeEmulator(echo=True, record=False) as oai,
        running_app(tmp_path, _telnyx_env(oai, seed, port), agents=book) as (base, _s, _a),
    ):
        options = _telnyx_options(
            base,
            seed,
            port,
            telnyx_codec=codec,
            calls=3,
            duration_s=3.0,
            ramp_s=0.3,
            drain_s=3.0,  # a loaded CI machine lags: let every echo come back before hanging up
        )
        report = await run_load(options)
    assert report.errors == []
    assert report.calls_ok == 3 and report.calls_failed == 0
    assert report.mode == "position"
    assert report.frames_sent == 3 * 150
    assert report.frames_lost == 0 and report.frames_queued <= 3 * held
    assert report.round_trip.count >= report.frames_sent - 3 * held
    assert oai.violations == []
