"""Streaming resampler, conversion and framing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from switchboard.audio import Framer, Resampler, StreamConverter, convert
from switchboard.errors import AudioError
from switchboard.media import AudioChunk, AudioFormat, AudioSpec
from tests.audio.signals import tone


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    noise_energy = float(np.sum((reference - test) ** 2))
    if noise_energy == 0.0:
        return math.inf  # bit-identical
    return float(10 * np.log10(np.sum(reference**2) / noise_energy))


@pytest.mark.parametrize(
    ("src", "dst"), [(8000, 24000), (24000, 8000), (8000, 16000), (48000, 8000)]
)
def test_chunked_stream_equals_one_shot(src: int, dst: int) -> None:
    pcm = tone(src)
    step = src * 20 // 1000 * 2  # 20 ms
    chunked = Resampler(src, dst)
    a = b"".join(chunked.process(pcm[i : i + step]) for i in range(0, len(pcm), step))
    a += chunked.flush()
    whole = Resampler(src, dst)
    b = whole.process(pcm) + whole.flush()
    assert a == b
    assert abs(len(a) // 2 - dst) <= 1  # one second in, one second out


def test_round_trip_snr_at_least_60_db() -> None:
    # three tones across the telephone band (a pure tone comes back bit-identical)
    parts = [np.frombuffer(tone(8000, 2.0, freq=f, amp=0.2), "<i2") for f in (311, 997, 3001)]
    pcm = np.sum(parts, axis=0).astype("<i2").tobytes()
    up = Resampler(8000, 24000)
    mid = up.process(pcm) + up.flush()
    down = Resampler(24000, 8000)
    back = down.process(mid) + down.flush()
    ref = np.frombuffer(pcm, "<i2").astype(np.float64)
    out = np.frombuffer(back, "<i2").astype(np.float64)[: len(ref)]
    core = slice(800, len(ref) - 800)  # ignore filter edges
    assert snr_db(ref[core], out[core]) >= 60.0


def test_unknown_rate_and_odd_bytes_are_clear_errors() -> None:
    with pytest.raises(AudioError, match="unsupported sample rate 11025"):
        Resampler(11025, 8000)
    with pytest.raises(AudioError, match="even number"):
        Resampler(8000, 16000).process(b"\x01")


def test_convert_ulaw_8k_to_pcm_24k_and_back() -> None:
    ulaw = convert(AudioChunk(tone(8000, 0.5), AudioFormat.PCM16, 8000), AudioFormat.ULAW, 8000)
    assert len(ulaw.data) == 4000
    pcm = convert(ulaw, AudioFormat.PCM16, 24000)
    assert pcm.format is AudioFormat.PCM16 and pcm.sample_rate == 24000
    assert abs(len(pcm.data) // 2 - 12000) <= 1
    same = convert(pcm, AudioFormat.PCM16, 24000)
    assert same is pcm


def test_stream_converter_passthrough_is_identity() -> None:
    spec = AudioSpec(AudioFormat.ULAW, 8000)
    conv = StreamConverter(spec, spec)
    assert conv.passthrough
    payload = bytes(range(160))
    assert conv.process(payload) is payload


def test_stream_converter_ulaw_to_pcm16_16k() -> None:
    conv = StreamConverter(AudioSpec(AudioFormat.ULAW, 8000), AudioSpec(AudioFormat.PCM16, 16000))
    total = sum(len(conv.process(b"\xff" * 160)) for _ in range(50))
    total += len(conv.flush())
    assert abs(total - 32000) <= 4  # one second of 16 kHz PCM16
    assert len(conv.process(b"\xff" * 1600)) > 0  # usable again after a flush


def test_framer_cuts_20ms_frames_and_pads_the_tail() -> None:
    framer = Framer(AudioSpec(AudioFormat.ULAW, 8000))
    assert framer.frame_bytes == 160
    assert framer.push(b"\x01" * 100) == []
    frames = framer.push(b"\x01" * 300)
    assert [len(f) for f in frames] == [160, 160]
    assert framer.pending == 80
    (tail,) = framer.flush()
    assert tail == b"\x01" * 80 + b"\xff" * 80  # μ-law silence
    assert framer.flush() == []


def test_audio_spec_arithmetic() -> None:
    spec = AudioSpec(AudioFormat.PCM16, 24000)
    assert spec.bytes_for_ms(20) == 960
    assert spec.duration_ms(960) == 20.0
    assert AudioChunk(b"\x00" * 320, AudioFormat.ULAW, 8000).duration_ms == 40.0
