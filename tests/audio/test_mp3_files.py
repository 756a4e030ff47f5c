"""MP3 streaming decode/encode and whole files (WAV, MP3, Ogg/Opus)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from switchboard.audio import (
    Mp3Decoder,
    Mp3Encoder,
    decode_audio,
    encode_audio,
    read_audio_file,
    write_audio_file,
)
from switchboard.errors import AudioError
from tests.audio.signals import aligned_snr_db, samples, voice
from tests.pyav import needs_av


@needs_av
@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
@pytest.mark.parametrize(("suffix", "floor"), [(".mp3", 20.0), (".ogg", 15.0), (".opus", 15.0)])
def test_file_round_trip_is_gapless(tmp_path: Path, rate: int, suffix: str, floor: float) -> None:
    pcm = voice(rate, 1.0)
    path = tmp_path / f"greeting{suffix}"
    write_audio_file(path, pcm.tobytes(), rate)
    back = samples(read_audio_file(path, rate))
    assert abs(len(back) - len(pcm)) <= rate // 1000  # encoder delay and padding trimmed
    assert aligned_snr_db(pcm, back, max_lag=8) >= floor  # measured MP3 26 dB, Opus 24-30 dB


def test_wav_needs_nothing_extra_and_mixes_down(tmp_path: Path) -> None:
    left, right = voice(8000, 0.5), voice(8000, 0.5, f0=200)
    stereo = np.stack([left, right], axis=1).astype("<i2")
    path = tmp_path / "hold.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(stereo.tobytes())
    mono = samples(read_audio_file(path, 8000))
    expected = ((left.astype(np.float64) + right) / 2).round()
    assert np.array_equal(mono, expected.astype("<i2"))
    assert len(read_audio_file(path, 16000)) == 2 * len(mono.tobytes())  # resampled


def test_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"unknown audio file type '\.flac'"):
        write_audio_file(tmp_path / "x.flac", bytes(320), 8000)
    with pytest.raises(AudioError, match="cannot read audio file"):
        read_audio_file(tmp_path / "missing.wav", 8000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00")
    with pytest.raises(AudioError, match="bad WAV file"):
        read_audio_file(tmp_path / "bad.wav", 8000)
    with pytest.raises(AudioError, match="MP3 is defined at"):
        encode_audio(bytes(320), 22000, "mp3")


@needs_av
def test_undecodable_file_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="cannot decode the audio file"):
        decode_audio(b"not audio at all" * 100, 16000)


@needs_av
def test_streaming_mp3_decode_in_any_pieces_with_an_id3_tag() -> None:
    pcm = voice(16000, 1.0)
    data = encode_audio(pcm.tobytes(), 16000, "mp3")
    assert data.startswith(b"ID3")  # the muxer's tag: the decoder must skip it
    decoder = Mp3Decoder(24000)  # any output rate
    out = b"".join(decoder.decode(data[i : i + 7]) for i in range(0, len(data), 7))
    out += decoder.flush()
    assert decoder.frames_decoded == 0  # flushed: a fresh stream
    ref = samples(encode_audio(pcm.tobytes(), 16000, "wav")[44:])
    back = samples(decode_audio(encode_audio(samples(out).tobytes(), 24000, "wav"), 16000))
    # not gapless (LAME delay + the tag's silent frame), but the same voice
    assert aligned_snr_db(ref, back, max_lag=4000) >= 18.0


@needs_av
def test_streaming_mp3_rejects_junk() -> None:
    decoder = Mp3Decoder(16000)
    junk = bytes(range(256)) * 4
    for _ in range(16):  # 16 KiB: still maybe a stream with a long preamble
        decoder.decode(junk)
    with pytest.raises(AudioError, match="not an MP3 stream"):
        decoder.decode(junk)
    fresh = Mp3Decoder(16000)
    fresh.decode(b"junk" * 10)
    with pytest.raises(AudioError, match="MP3"):
        fresh.flush()


@needs_av
def test_mp3_encoder_streams_and_flushes() -> None:
    pcm = voice(8000, 1.0)
    encoder = Mp3Encoder(8000)
    data = b"".join(encoder.encode(pcm[i : i + 100].tobytes()) for i in range(0, len(pcm), 100))
    data += encoder.flush()
    assert data[:2] == b"\xff\xe3"  # MPEG-2.5 layer III sync at 8 kHz
    assert aligned_snr_db(pcm, samples(decode_audio(data, 8000)), max_lag=3000) >= 20.0
    with pytest.raises(AudioError, match="MP3 is defined at"):
        Mp3Encoder(7000)


@needs_av
def test_a_wav_at_a_rate_we_do_not_resample_goes_through_ffmpeg(tmp_path: Path) -> None:
    path = tmp_path / "hold.wav"
    with wave.open(str(path), "wb") as wav:  # 11025 Hz: not in SUPPORTED_RATES
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(11025)
        wav.writeframes(voice(11025, 0.5).tobytes())
    back = samples(read_audio_file(path, 8000))
    assert abs(len(back) - 4000) <= 8
    assert aligned_snr_db(voice(8000, 0.5), back, max_lag=64) >= 20.0
