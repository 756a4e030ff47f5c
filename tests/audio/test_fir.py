"""The low-latency integer-ratio FIR resampler (what StreamConverter uses for 8k↔16k/24k)."""

from __future__ import annotations

import numpy as np
import pytest

from switchboard.audio import Framer, StreamConverter
from switchboard.audio.fir import FirResampler, fir_ratio, integer_ratio
from switchboard.errors import AudioError
from switchboard.media import AudioFormat, AudioSpec
from tests.audio.signals import tone


@pytest.mark.parametrize(
    ("src", "dst"), [(8000, 24000), (24000, 8000), (8000, 16000), (16000, 8000), (48000, 8000)]
)
def test_chunked_equals_one_shot_and_length_is_kept(src: int, dst: int) -> None:
    pcm = tone(src)
    step = src * 20 // 1000 * 2
    chunked = FirResampler(src, dst)
    a = b"".join(chunked.process(pcm[i : i + step]) for i in range(0, len(pcm), step))
    a += chunked.flush()
    whole = FirResampler(src, dst)
    assert a == whole.process(pcm) + whole.flush()
    assert len(a) // 2 == dst


def test_round_trip_snr_and_alignment() -> None:
    parts = [np.frombuffer(tone(8000, 2.0, freq=f, amp=0.2), "<i2") for f in (311, 997, 3001)]
    pcm = np.sum(parts, axis=0).astype("<i2").tobytes()
    up = FirResampler(8000, 24000)
    mid = up.process(pcm) + up.flush()
    down = FirResampler(24000, 8000)
    back = down.process(mid) + down.flush()
    ref = np.frombuffer(pcm, "<i2").astype(np.float64)
    out = np.frombuffer(back, "<i2").astype(np.float64)
    assert len(out) == len(ref)  # delay compensated: aligned sample for sample
    core = slice(800, len(ref) - 800)
    noise = float(np.sum((ref[core] - out[core]) ** 2))
    assert 10 * np.log10(np.sum(ref[core] ** 2) / noise) >= 60.0


def test_low_latency_steady_output_per_chunk() -> None:
    up = FirResampler(8000, 24000)
    sizes = [len(up.process(tone(8000, 0.02))) // 2 for _ in range(5)]
    assert sizes[0] >= 480 - 120  # at most ~5 ms held (soxr HQ: nothing for 3 chunks)
    assert sizes[1:] == [480] * 4  # then exactly one chunk out per chunk in, no bursts


def test_rejects_non_integer_ratios_and_odd_bytes() -> None:
    assert integer_ratio(8000, 24000) == (3, 1) and integer_ratio(48000, 16000) == (1, 3)
    assert integer_ratio(22050, 8000) is None
    with pytest.raises(AudioError, match="integer resampling ratio"):
        FirResampler(22050, 8000)
    with pytest.raises(AudioError, match="integer resampling ratio"):
        FirResampler(16000, 24000)  # aligned: half a sample of delay cannot be dropped
    with pytest.raises(AudioError, match="small rational resampling ratio"):
        FirResampler(44100, 48000, aligned=False)
    assert fir_ratio(16000, 24000) == (3, 2) and fir_ratio(24000, 16000) == (2, 3)
    assert fir_ratio(16000, 24000, aligned=True) is None
    with pytest.raises(AudioError, match="even number"):
        FirResampler(8000, 16000).process(b"\x01")


def test_stream_converter_uses_it_for_telephony_rates() -> None:
    conv = StreamConverter(AudioSpec(AudioFormat.ULAW, 8000), AudioSpec(AudioFormat.PCM16, 24000))
    assert len(conv.process(b"\xff" * 160)) >= 2 * (480 - 120)  # audio out on the first frame
    assert len(conv.process(b"\xff" * 160)) == 2 * 480


@pytest.mark.parametrize(("src", "dst"), [(8000, 24000), (24000, 8000), (8000, 16000)])
def test_unaligned_gives_each_piece_at_once_late_by_the_filter_delay(src: int, dst: int) -> None:
    pcm = tone(src)
    step = src * 20 // 1000 * 2
    live = FirResampler(src, dst, aligned=False)
    pieces = [live.process(pcm[i : i + step]) for i in range(0, len(pcm), step)]
    # every 20 ms piece in gives 20 ms out at once (aligned output holds ~4 ms of each back)
    assert {len(p) for p in pieces[1:]} == {dst * 20 // 1000 * 2}
    aligned = FirResampler(src, dst)
    ref = np.frombuffer(aligned.process(pcm) + aligned.flush(), "<i2")
    out = np.frombuffer(b"".join(pieces) + live.flush(), "<i2")
    lag = round(live.delay_ms * dst / 1000)  # the same audio, the filter's delay later
    assert len(out) == len(ref) + lag
    assert np.array_equal(out[lag:], ref)
    assert 3.5 < live.delay_ms < 4.5
    # and the chunking still never changes the output
    whole = FirResampler(src, dst, aligned=False)
    assert whole.process(pcm) + whole.flush() == out.tobytes()


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize(("src", "dst"), [(24000, 8000), (8000, 24000), (16000, 8000)])
def test_a_flush_with_nothing_fed_gives_nothing(src: int, dst: int, aligned: bool) -> None:
    """No tail without input: fresh, after a flush, after a reset (a barge-in). Unaligned, the
    zeros that release the delay came out as ~4 ms of silence, which the bridge framed into a
    frame of agent audio at the end of every provider turn, even one with no audio."""
    res = FirResampler(src, dst, aligned=aligned)
    assert res.flush() == b""
    assert res.process(tone(src, 0.02)) != b"" or aligned
    assert res.flush() != b""  # a real tail
    assert res.flush() == b""
    res.process(tone(src, 0.02))
    res.reset()
    assert res.flush() == b""


def test_a_turn_with_no_audio_gives_the_carrier_no_frame() -> None:
    """What the bridge does at a provider's end of turn (``ProviderSide``): flush the
    converter, then the framer. A turn that sent no audio (Gemini's turn for noise, a tool
    call's turn) must give no frame: one would be a reply of its own."""
    conv = StreamConverter(
        AudioSpec(AudioFormat.PCM16, 24000), AudioSpec(AudioFormat.ULAW, 8000), aligned=False
    )
    framer = Framer(AudioSpec(AudioFormat.ULAW, 8000))
    assert framer.push(conv.flush()) + framer.flush() == []
    framer.push(conv.process(tone(24000, 0.1)))
    assert framer.push(conv.flush()) + framer.flush() != []  # the last turn's tail
    assert framer.push(conv.flush()) + framer.flush() == []  # the next, empty, turn
    framer.push(conv.process(tone(24000, 0.1)))
    conv.reset()  # a barge-in
    framer.clear()
    assert framer.push(conv.flush()) + framer.flush() == []


@pytest.mark.parametrize(("src", "dst"), [(16000, 24000), (24000, 16000)])
def test_a_wideband_leg_to_24k_is_resampled_at_once_by_the_fir(src: int, dst: int) -> None:
    """16k↔24k (a Telnyx L16 or G.722 leg and OpenAI's 24 kHz) is 3/2: soxr's HQ stream held
    up to ~60 ms of it each way (~80 ms of one call's round trip); the FIR gives every 20 ms
    piece out at once, late by its own ~2 ms, whatever the chunking."""
    pcm = tone(src, freq=997.0)
    step = src * 20 // 1000 * 2
    live = FirResampler(src, dst, aligned=False)
    pieces = [live.process(pcm[i : i + step]) for i in range(0, len(pcm), step)]
    assert {len(p) for p in pieces} == {dst * 20 // 1000 * 2}
    out = b"".join(pieces) + live.flush()
    whole = FirResampler(src, dst, aligned=False)
    assert whole.process(pcm) + whole.flush() == out
    odd = FirResampler(src, dst, aligned=False)  # pieces of 7 samples: the grid carries over
    assert (
        b"".join(odd.process(pcm[i : i + 14]) for i in range(0, len(pcm), 14)) + (odd.flush())
        == out
    )
    assert 1.5 < live.delay_ms < 2.5  # 199 taps at 48 kHz
    # the tone comes out as the same tone: compare with an ideal resampling of it
    lag = live.delay_ms / 1000
    t = np.arange(dst) / dst - lag
    ideal = np.sin(2 * np.pi * 997.0 * t) * 0.5 * 32767
    got = np.frombuffer(out, "<i2")[:dst].astype(np.float64)
    core = slice(dst // 10, dst - dst // 10)
    noise = float(np.sum((got[core] - ideal[core]) ** 2))
    assert 10 * np.log10(np.sum(ideal[core] ** 2) / noise) >= 60.0


def test_the_stream_converter_uses_the_fir_for_a_wideband_leg() -> None:
    conv = StreamConverter(
        AudioSpec(AudioFormat.PCM16, 16000), AudioSpec(AudioFormat.PCM16, 24000), aligned=False
    )
    assert [len(conv.process(tone(16000, 0.02))) for _ in range(3)] == [960, 960, 960]
