"""Opus: round trips per rate, packet loss concealment, bad packets, per-stream codec state."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from switchboard.audio import OpusDecoder, OpusEncoder
from switchboard.audio import _pyav as pyav
from switchboard.errors import AudioError
from tests.audio.signals import aligned_snr_db, correlation, samples, voice
from tests.pyav import needs_av

pytestmark = needs_av


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_round_trip_20ms_packets_keep_the_waveform(rate: int) -> None:
    pcm = voice(rate, 1.0)
    encoder, decoder = OpusEncoder(rate), OpusDecoder(rate)
    packets = encoder.encode(pcm.tobytes())
    assert len(packets) == 50  # one second in 20 ms packets, nothing held back
    assert encoder.pending == 0
    pieces = [decoder.decode(p) for p in packets]
    assert {len(p) for p in pieces[2:]} == {rate // 50 * 2}  # 20 ms out per packet
    assert aligned_snr_db(pcm, samples(b"".join(pieces))) >= 12.0  # measured 16-29 dB


def test_chunking_never_changes_the_packets() -> None:
    pcm = voice(16000, 0.5).tobytes()
    whole = OpusEncoder(16000).encode(pcm)
    pieces = OpusEncoder(16000)
    cuts = [0, 6, 646, 650, 3000, 7778, len(pcm)]  # odd sizes, across packet boundaries
    chunked = [p for a, b in itertools.pairwise(cuts) for p in pieces.encode(pcm[a:b])]
    assert chunked == whole


def test_flush_pads_the_last_packet_and_reset_drops_the_remainder() -> None:
    encoder = OpusEncoder(16000)
    assert encoder.encode(bytes(500)) == []
    assert encoder.pending == 500
    assert len(encoder.flush()) == 1 and encoder.pending == 0
    encoder.encode(bytes(500))
    encoder.reset()
    assert encoder.pending == 0 and encoder.flush() == []


@pytest.mark.parametrize("frame_ms", [10, 40, 60])
def test_other_packet_durations(frame_ms: int) -> None:
    pcm = voice(16000, 0.6)
    packets = OpusEncoder(16000, frame_ms=frame_ms).encode(pcm.tobytes())
    assert len(packets) == 600 // frame_ms
    decoder = OpusDecoder(16000)
    out = b"".join(decoder.decode(p) for p in packets)
    assert 9600 - 32 <= len(out) // 2 <= 9600  # the resampler keeps back a millisecond or two


def test_encoder_state_is_never_shared_between_streams() -> None:
    a_pcm, b_pcm = voice(16000, 0.4, f0=120).tobytes(), voice(16000, 0.4, f0=210).tobytes()
    alone_a = OpusEncoder(16000).encode(a_pcm)
    alone_b = OpusEncoder(16000).encode(b_pcm)
    enc_a, enc_b = OpusEncoder(16000), OpusEncoder(16000)
    mixed_a: list[bytes] = []
    mixed_b: list[bytes] = []
    for i in range(0, len(a_pcm), 640):  # two calls' packets interleaved, as on one worker
        mixed_a += enc_a.encode(a_pcm[i : i + 640])
        mixed_b += enc_b.encode(b_pcm[i : i + 640])
    assert mixed_a == alone_a and mixed_b == alone_b
    # and the decoders likewise
    dec_a, dec_b = OpusDecoder(16000), OpusDecoder(16000)
    heard_a: list[bytes] = []
    for x, y in zip(alone_a, alone_b, strict=True):
        heard_a.append(dec_a.decode(x))
        dec_b.decode(y)
    solo = OpusDecoder(16000)
    assert b"".join(heard_a) == b"".join(solo.decode(p) for p in alone_a)


def test_a_lost_packet_is_concealed_and_the_stream_recovers() -> None:
    rate = 16000
    packets = OpusEncoder(rate).encode(voice(rate, 1.0).tobytes())
    clean, lossy = OpusDecoder(rate), OpusDecoder(rate)
    heard = [clean.decode(p) for p in packets]
    got = [lossy.conceal() if i == 25 else lossy.decode(p) for i, p in enumerate(packets)]
    concealed, truth = samples(got[25]), samples(heard[25])
    assert len(concealed) == len(truth) == rate // 50
    # an extrapolation of the voice, not silence: energy, and the shape of what was lost
    assert np.sqrt(np.mean(concealed.astype(np.float64) ** 2)) > 0.25 * np.sqrt(
        np.mean(truth.astype(np.float64) ** 2)
    )
    assert correlation(concealed, truth) > 0.3  # measured 0.57
    assert got[35] and aligned_snr_db(samples(heard[35]), samples(got[35]), max_lag=4) > 20


def test_concealment_before_any_packet_is_silence() -> None:
    assert OpusDecoder(8000).conceal() == bytes(320)


def test_bad_packets_are_clear_errors_and_the_decoder_survives() -> None:
    decoder = OpusDecoder(16000)
    good = OpusEncoder(16000).encode(voice(16000, 0.1).tobytes())
    with pytest.raises(AudioError, match="empty Opus packet"):
        decoder.decode(b"")
    with pytest.raises(AudioError, match=r"bad Opus packet \(3 bytes\)"):
        decoder.decode(b"\x4b\x03\xff")  # code 3 announcing more frames than bytes
    assert 600 <= len(decoder.decode(good[0])) <= 640  # less the resampler's hold-back


def test_bad_parameters_are_clear_errors() -> None:
    with pytest.raises(AudioError, match="Opus runs at"):
        OpusEncoder(44100)
    with pytest.raises(AudioError, match="Opus runs at"):
        OpusDecoder(22050)
    with pytest.raises(AudioError, match="not 25"):
        OpusEncoder(16000, frame_ms=25)
    with pytest.raises(AudioError, match="complexity"):
        OpusEncoder(16000, complexity=11)
    with pytest.raises(AudioError, match="application"):
        OpusEncoder(16000, application="music")
    with pytest.raises(AudioError, match="even number"):
        OpusEncoder(16000).encode(b"\x01")


def test_without_pyav_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyav, "AV_AVAILABLE", False)
    with pytest.raises(AudioError, match=r"switchboard-voice\[codecs\]"):
        OpusEncoder(16000)
