"""Whole audio files ⇄ PCM16 mono: WAV, MP3 and Ogg/Opus (greetings, hold music, recordings).

WAV goes through the standard library's :mod:`wave`, so it needs nothing extra; MP3, Ogg/Opus
and anything else FFmpeg reads need PyAV (``pip install 'switchboard-voice[codecs]'``).
Decoding is gapless (the demuxer trims the encoders' delay and padding from the LAME tag and
the Ogg Opus pre-skip), so a greeting starts on its first sample.

The format is chosen by content when reading (``RIFF``/``OggS``/``ID3`` or an MPEG sync) and by
the suffix when writing (``.wav``, ``.mp3``, ``.ogg``/``.opus``).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Literal

import numpy as np

from switchboard.audio._pyav import (
    AV_AVAILABLE,
    av,
    av_errors,
    drain,
    frames_to_pcm,
    mono_resampler,
    pcm_frame,
)
from switchboard.audio._pyav import require_av as _require_av
from switchboard.audio.mp3 import MP3_RATES
from switchboard.audio.opus import OPUS_RATES, default_opus_bitrate
from switchboard.audio.resample import SUPPORTED_RATES, Resampler
from switchboard.errors import AudioError

__all__ = [
    "FileFormat",
    "decode_audio",
    "encode_audio",
    "file_format_for",
    "read_audio_file",
    "write_audio_file",
]

FileFormat = Literal["wav", "mp3", "ogg"]
_SUFFIXES: dict[str, FileFormat] = {".wav": "wav", ".mp3": "mp3", ".ogg": "ogg", ".opus": "ogg"}


def file_format_for(path: str | Path) -> FileFormat:
    """The file format a path's suffix names (``.wav``, ``.mp3``, ``.ogg``/``.opus``)."""
    suffix = Path(path).suffix.lower()
    try:
        return _SUFFIXES[suffix]
    except KeyError:
        raise AudioError(f"unknown audio file type {suffix!r}; use .wav, .mp3 or .ogg") from None


def decode_audio(data: bytes, sample_rate: int) -> bytes:
    """A whole audio file's bytes → PCM16 mono at ``sample_rate`` (mixed down, resampled).

    Raises:
        AudioError: unreadable or empty audio, or PyAV missing for a compressed file.
    """
    if data[:4] == b"RIFF":
        rate = _wav_rate(data)
        if rate is None or rate in SUPPORTED_RATES or not AV_AVAILABLE:
            return _decode_wav(data, sample_rate)  # no PyAV needed; FFmpeg resamples others
    _require_av("reading MP3 or Ogg/Opus files")
    resampler = mono_resampler(sample_rate)
    with av_errors("cannot decode the audio file"), av.open(io.BytesIO(data), "r") as container:
        if not container.streams.audio:
            raise AudioError("the file has no audio stream")
        pcm = frames_to_pcm(list(container.decode(container.streams.audio[0])), resampler)
        pcm += drain(resampler)
    if not pcm:
        raise AudioError("the audio file holds no audio")
    return pcm


def encode_audio(
    pcm: bytes, sample_rate: int, fmt: FileFormat, *, bitrate: int | None = None
) -> bytes:
    """PCM16 mono at ``sample_rate`` → a whole file's bytes in ``fmt``.

    Ogg/Opus needs one of the Opus rates (8/16/24/48 kHz); MP3 one of the MPEG rates.
    """
    if len(pcm) % 2:
        raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
    match fmt:
        case "wav":
            buf = io.BytesIO()
            with wave.open(buf, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(sample_rate)
                wav.writeframes(pcm)
            return buf.getvalue()
        case "ogg":
            if sample_rate not in OPUS_RATES:
                raise AudioError(f"Opus runs at {sorted(OPUS_RATES)} Hz, not {sample_rate}")
            rate_bits = bitrate or default_opus_bitrate(sample_rate)
            return _mux(pcm, sample_rate, "ogg", "libopus", "s16", rate_bits)
        case "mp3":
            if sample_rate not in MP3_RATES:
                raise AudioError(f"MP3 is defined at {sorted(MP3_RATES)} Hz, not {sample_rate}")
            rate_bits = bitrate or (32000 if sample_rate <= 16000 else 64000)
            return _mux(pcm, sample_rate, "mp3", "libmp3lame", "s16p", rate_bits)
    raise AudioError(f"unknown audio file format {fmt!r}")


def read_audio_file(path: str | Path, sample_rate: int) -> bytes:
    """Read a WAV, MP3 or Ogg/Opus file as PCM16 mono at ``sample_rate``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AudioError(f"cannot read audio file {path}: {exc.strerror}") from exc
    try:
        return decode_audio(data, sample_rate)
    except AudioError as exc:
        raise AudioError(f"{path}: {exc}") from exc


def write_audio_file(
    path: str | Path, pcm: bytes, sample_rate: int, *, bitrate: int | None = None
) -> None:
    """Write PCM16 mono as the file type ``path``'s suffix names (.wav, .mp3, .ogg/.opus)."""
    data = encode_audio(pcm, sample_rate, file_format_for(path), bitrate=bitrate)
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise AudioError(f"cannot write audio file {path}: {exc.strerror}") from exc


def _wav_rate(data: bytes) -> int | None:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getframerate()
    except (wave.Error, EOFError):
        return None  # _decode_wav reports it


def _decode_wav(data: bytes, sample_rate: int) -> bytes:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"bad WAV file: {exc}") from exc
    if width != 2:
        raise AudioError(f"WAV files must be 16-bit PCM, this one has {8 * width}-bit samples")
    samples = np.frombuffer(raw[: len(raw) // (2 * channels) * 2 * channels], dtype="<i2")
    if channels > 1:  # mix down: the mean of the channels
        samples = samples.reshape(-1, channels).mean(axis=1).round().astype("<i2")
    pcm = samples.tobytes()
    if rate != sample_rate:
        pcm = Resampler(rate, sample_rate).process(pcm, last=True)
    return pcm


def _mux(pcm: bytes, rate: int, container: str, codec: str, sample_fmt: str, bits: int) -> bytes:
    _require_av(f"writing {container} files")
    buf = io.BytesIO()
    samples = np.frombuffer(pcm, dtype="<i2")
    what = f"cannot write the {container} file"
    with av_errors(what), av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        ctx = stream.codec_context
        ctx.layout = "mono"
        ctx.format = sample_fmt
        ctx.bit_rate = bits
        ctx.open()
        # both encoders take a short last frame and record the padding (gapless)
        size = ctx.frame_size
        planar = sample_fmt.endswith("p")
        for i in range(0, len(samples), size):
            piece = samples[i : i + size]
            out.mux(stream.encode(pcm_frame(piece, rate, i, planar=planar)))
        out.mux(stream.encode(None))
    return buf.getvalue()
