"""Opus: round trips per rate, packet loss concealment, bad packets, per-stream codec state —
each on both backends (libopus through ctypes, PyAV) — and the two backends' interoperation."""

from __future__ import annotations

import ctypes.util
import itertools
import random
from collections.abc import Iterator

import numpy as np
import pytest

from switchboard.audio import OpusDecoder, OpusEncoder, _libopus, _pyav
from switchboard.audio.opus import OpusBackend, opus_backends
from switchboard.errors import AudioError
from tests.audio.signals import aligned_snr_db, correlation, samples, voice
from tests.pyav import OPUS_BACKENDS, needs_av, needs_libopus


@pytest.fixture(params=OPUS_BACKENDS)
def backend(request: pytest.FixtureRequest) -> OpusBackend:
    name: OpusBackend = request.param
    return name


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_round_trip_20ms_packets_keep_the_waveform(rate: int, backend: OpusBackend) -> None:
    pcm = voice(rate, 1.0)
    encoder = OpusEncoder(rate, backend=backend)
    decoder = OpusDecoder(rate, backend=backend)
    assert encoder.backend == decoder.backend == backend
    packets = encoder.encode(pcm.tobytes())
    assert len(packets) == 50  # one second in 20 ms packets, nothing held back
    assert encoder.pending == 0
    pieces = [decoder.decode(p) for p in packets]
    assert {len(p) for p in pieces[2:]} == {rate // 50 * 2}  # 20 ms out per packet
    assert aligned_snr_db(pcm, samples(b"".join(pieces))) >= 12.0  # measured 19-29 dB


def test_chunking_never_changes_the_packets(backend: OpusBackend) -> None:
    pcm = voice(16000, 0.5).tobytes()
    whole = OpusEncoder(16000, backend=backend).encode(pcm)
    pieces = OpusEncoder(16000, backend=backend)
    cuts = [0, 6, 646, 650, 3000, 7778, len(pcm)]  # odd sizes, across packet boundaries
    chunked = [p for a, b in itertools.pairwise(cuts) for p in pieces.encode(pcm[a:b])]
    assert chunked == whole
    frames = OpusEncoder(16000, backend=backend)  # whole frames, the fast path
    assert [p for i in range(0, len(pcm), 640) for p in frames.encode(pcm[i : i + 640])] == whole


def test_flush_pads_the_last_packet_and_reset_drops_the_remainder(backend: OpusBackend) -> None:
    encoder = OpusEncoder(16000, backend=backend)
    assert encoder.encode(bytes(500)) == []
    assert encoder.pending == 500
    assert len(encoder.flush()) == 1 and encoder.pending == 0
    encoder.encode(bytes(500))
    encoder.reset()
    assert encoder.pending == 0 and encoder.flush() == []


@pytest.mark.parametrize("frame_ms", [10, 40, 60])
def test_other_packet_durations(frame_ms: int, backend: OpusBackend) -> None:
    pcm = voice(16000, 0.6)
    packets = OpusEncoder(16000, frame_ms=frame_ms, backend=backend).encode(pcm.tobytes())
    assert len(packets) == 600 // frame_ms
    decoder = OpusDecoder(16000, backend=backend)
    out = b"".join(decoder.decode(p) for p in packets)
    assert 9600 - 32 <= len(out) // 2 <= 9600  # PyAV's resampler keeps back a ms or two
    if backend == "libopus":
        assert len(out) // 2 == 9600  # native rate: exactly what was sent


def test_encoder_state_is_never_shared_between_streams(backend: OpusBackend) -> None:
    a_pcm, b_pcm = voice(16000, 0.4, f0=120).tobytes(), voice(16000, 0.4, f0=210).tobytes()
    alone_a = OpusEncoder(16000, backend=backend).encode(a_pcm)
    alone_b = OpusEncoder(16000, backend=backend).encode(b_pcm)
    enc_a, enc_b = OpusEncoder(16000, backend=backend), OpusEncoder(16000, backend=backend)
    mixed_a: list[bytes] = []
    mixed_b: list[bytes] = []
    for i in range(0, len(a_pcm), 640):  # two calls' packets interleaved, as on one worker
        mixed_a += enc_a.encode(a_pcm[i : i + 640])
        mixed_b += enc_b.encode(b_pcm[i : i + 640])
    assert mixed_a == alone_a and mixed_b == alone_b
    # and the decoders likewise
    dec_a, dec_b = OpusDecoder(16000, backend=backend), OpusDecoder(16000, backend=backend)
    heard_a: list[bytes] = []
    for x, y in zip(alone_a, alone_b, strict=True):
        heard_a.append(dec_a.decode(x))
        dec_b.decode(y)
    solo = OpusDecoder(16000, backend=backend)
    assert b"".join(heard_a) == b"".join(solo.decode(p) for p in alone_a)


@pytest.mark.parametrize("rate", [16000, 24000])
def test_a_lost_packet_is_concealed_and_the_stream_recovers(
    rate: int, backend: OpusBackend
) -> None:
    packets = OpusEncoder(rate, backend=backend).encode(voice(rate, 1.0).tobytes())
    clean, lossy = OpusDecoder(rate, backend=backend), OpusDecoder(rate, backend=backend)
    heard = [clean.decode(p) for p in packets]
    got = [lossy.conceal() if i == 25 else lossy.decode(p) for i, p in enumerate(packets)]
    concealed, truth = samples(got[25]), samples(heard[25])
    assert len(concealed) == len(truth) == rate // 50
    # an extrapolation of the voice, not silence: energy, and the shape of what was lost
    assert np.sqrt(np.mean(concealed.astype(np.float64) ** 2)) > 0.25 * np.sqrt(
        np.mean(truth.astype(np.float64) ** 2)
    )
    assert correlation(concealed, truth) > 0.3  # measured 0.57-0.59, both backends
    assert got[35] and aligned_snr_db(samples(heard[35]), samples(got[35]), max_lag=4) > 20


@pytest.mark.parametrize("frame_ms", [10, 40])
def test_concealment_lasts_one_frame_of_the_last_configuration(
    frame_ms: int, backend: OpusBackend
) -> None:
    packets = OpusEncoder(16000, frame_ms=frame_ms, backend=backend).encode(
        voice(16000, 0.2).tobytes()
    )
    decoder = OpusDecoder(16000, backend=backend)
    for p in packets:
        decoder.decode(p)
    # CELT frames are 20 ms at most: a 40 ms packet carries two, and one is concealed
    assert len(decoder.conceal()) == 16 * min(frame_ms, 20) * 2


def test_a_reset_decoder_starts_afresh(backend: OpusBackend) -> None:
    a = OpusEncoder(16000, backend=backend).encode(voice(16000, 0.3, f0=120).tobytes())
    b = OpusEncoder(16000, backend=backend).encode(voice(16000, 0.3, f0=210).tobytes())
    reused = OpusDecoder(16000, backend=backend)
    for p in a:
        reused.decode(p)
    reused.reset()
    assert reused.conceal() == bytes(640)  # no last packet to extrapolate from
    solo = OpusDecoder(16000, backend=backend)
    assert [reused.decode(p) for p in b] == [solo.decode(p) for p in b]


def test_concealment_before_any_packet_is_silence(backend: OpusBackend) -> None:
    assert OpusDecoder(8000, backend=backend).conceal() == bytes(320)


def test_bad_packets_are_clear_errors_and_the_decoder_survives(backend: OpusBackend) -> None:
    decoder = OpusDecoder(16000, backend=backend)
    good = OpusEncoder(16000, backend=backend).encode(voice(16000, 0.1).tobytes())
    with pytest.raises(AudioError, match="empty Opus packet"):
        decoder.decode(b"")
    with pytest.raises(AudioError, match=r"bad Opus packet \(3 bytes\)"):
        decoder.decode(b"\x4b\x03\xff")  # code 3 announcing more frames than bytes
    assert 600 <= len(decoder.decode(good[0])) <= 640  # less PyAV's resampler's hold-back


@needs_libopus
def test_random_garbage_never_crashes_the_libopus_decoder() -> None:
    rng = random.Random(24)
    decoder = OpusDecoder(24000, backend="libopus")
    good = OpusEncoder(24000, backend="libopus").encode(voice(24000, 0.2).tobytes())
    rejected = 0
    messages: set[str] = set()
    for _ in range(3000):
        packet = rng.randbytes(rng.choice([1, 2, 3, 7, 60, 400, 1275, 1276, 4000]))
        try:
            pcm = decoder.decode(packet)
        except AudioError as exc:
            messages.add(str(exc).split(":")[0])
            rejected += 1
        else:
            assert len(pcm) % 2 == 0 and len(pcm) <= 24000 * 120 // 1000 * 2
        decoder.conceal()
    assert 0 < rejected < 3000
    assert all(m.startswith("bad Opus packet (") for m in messages), messages
    for p in good:  # still decodes a real stream afterwards
        assert len(decoder.decode(p)) == 960


@needs_libopus
def test_a_closed_libopus_codec_refuses_instead_of_crashing() -> None:
    encoder, decoder = OpusEncoder(16000, backend="libopus"), OpusDecoder(16000, backend="libopus")
    packet = encoder.encode(bytes(640))[0]
    encoder.close()
    encoder.close()  # twice is harmless
    decoder.close()
    with pytest.raises(AudioError, match="encoder is closed"):
        encoder.encode(bytes(640))
    with pytest.raises(AudioError, match="decoder is closed"):
        decoder.decode(packet)
    with pytest.raises(AudioError, match="decoder is closed"):
        decoder.reset()


@needs_libopus
@needs_av
@pytest.mark.parametrize("rate", [16000, 24000])
def test_the_backends_interoperate(rate: int) -> None:
    pcm = voice(rate, 1.0)
    direct = OpusEncoder(rate, backend="libopus").encode(pcm.tobytes())
    ffmpeg = OpusEncoder(rate, backend="pyav").encode(pcm.tobytes())
    backends: tuple[OpusBackend, ...] = ("libopus", "pyav")
    for dec in backends:
        for enc, packets in zip(backends, (direct, ffmpeg), strict=True):
            decoder = OpusDecoder(rate, backend=dec)
            out = b"".join(decoder.decode(p) for p in packets)
            assert aligned_snr_db(pcm, samples(out)) >= 12.0, (enc, dec)
    where = _libopus.libopus_path() or ""
    if "av.libs" in where or ".dylibs" in where:  # PyAV's own copy of libopus
        assert direct == ffmpeg  # the same libopus, set up the same way: the same packets
        capped = [
            OpusEncoder(rate, max_bandwidth_hz=8000, backend=b).encode(pcm.tobytes())
            for b in backends
        ]
        assert capped[0] == capped[1]  # FFmpeg's cutoff is libopus's max bandwidth


#: RFC 6716 §3.1 TOC configurations coding at most wideband (SILK NB/MB/WB, CELT NB/WB).
_UP_TO_WIDEBAND = frozenset(range(12)) | frozenset(range(16, 24))


def test_max_bandwidth_caps_the_coded_band(backend: OpusBackend) -> None:
    pcm = voice(24000, 0.6).tobytes()
    full = OpusEncoder(24000, backend=backend).encode(pcm)
    capped = OpusEncoder(24000, max_bandwidth_hz=8000, backend=backend).encode(pcm)
    assert any(p[0] >> 3 not in _UP_TO_WIDEBAND for p in full)  # 24 kHz: super-wideband
    assert all(p[0] >> 3 in _UP_TO_WIDEBAND for p in capped)
    with pytest.raises(AudioError, match="bandwidths"):
        OpusEncoder(24000, max_bandwidth_hz=7000, backend=backend)


@pytest.fixture
def system_libopus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Load the system's libopus instead of PyAV's copy for one test."""
    system = ctypes.util.find_library("opus")
    if system is None:
        pytest.skip("no system libopus (apt install libopus0)")
    monkeypatch.setattr(_libopus, "_candidates", lambda: [system])
    _libopus.load_libopus.cache_clear()
    yield system
    _libopus.load_libopus.cache_clear()


@needs_av
def test_the_system_libopus_serves_too_and_interoperates(system_libopus: str) -> None:
    assert _libopus.libopus_path() == system_libopus
    pcm = voice(16000, 1.0)
    packets = OpusEncoder(16000, backend="libopus").encode(pcm.tobytes())
    backends: tuple[OpusBackend, ...] = ("libopus", "pyav")  # PyAV decodes with its own copy
    for dec in backends:
        decoder = OpusDecoder(16000, backend=dec)
        out = b"".join(decoder.decode(p) for p in packets)
        assert aligned_snr_db(pcm, samples(out)) >= 12.0, dec


def test_the_default_backend_is_libopus_when_it_loads() -> None:
    assert OpusEncoder(16000).backend == opus_backends()[0]
    if _libopus.load_libopus() is not None:
        assert opus_backends()[0] == "libopus"


@needs_av
def test_without_libopus_pyav_takes_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_libopus, "load_libopus", lambda: None)
    assert opus_backends() == ["pyav"]
    assert OpusEncoder(16000).backend == OpusDecoder(16000).backend == "pyav"
    with pytest.raises(AudioError, match="'libopus' Opus backend is not available"):
        OpusDecoder(16000, backend="libopus")


def test_with_neither_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_libopus, "load_libopus", lambda: None)
    monkeypatch.setattr(_pyav, "AV_AVAILABLE", False)
    with pytest.raises(AudioError, match=r"switchboard-voice\[codecs\].*libopus0"):
        OpusEncoder(16000)
    with pytest.raises(AudioError, match=r"switchboard-voice\[codecs\]"):
        OpusDecoder(16000)


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
    with pytest.raises(AudioError, match="unknown Opus backend"):
        OpusEncoder(16000, backend="opuslib")  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="even number"):
        OpusEncoder(16000).encode(b"\x01")
