"""Streaming stereo audio files: two PCM16 channels in, a WAV, FLAC, Ogg/Opus or MP3 file out.

A :class:`StereoFileWriter` is opened on a path, takes blocks of left and right samples as they
come and is closed once; it never holds more than one encoder frame of audio, so a call of any
length is written in bounded memory. WAV goes through the standard library's :mod:`wave`, which
writes a provisional header and patches the sizes when the file is closed; FLAC, Ogg/Opus and
MP3 are muxed by FFmpeg through PyAV (``pip install 'switchboard-voice[codecs]'``).

Closing is what makes a file valid (the WAV sizes, the encoders' last frames, the container's
trailer): whoever opens a writer closes it, also when the call it records ends abnormally.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Literal

import numpy as np

from switchboard.audio._pyav import av, av_errors, require_av
from switchboard.audio.mp3 import MP3_RATES
from switchboard.audio.opus import OPUS_RATES
from switchboard.errors import AudioError

__all__ = [
    "CONTENT_TYPES",
    "RecordingFormat",
    "StereoFileWriter",
    "recording_rate",
]

RecordingFormat = Literal["wav", "flac", "ogg", "mp3"]

#: The media type each recording format is served with.
CONTENT_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
}

#: FFmpeg's (container, encoder, sample format, bit rate for stereo speech) per format.
_ENCODERS: dict[str, tuple[str, str, str, int]] = {
    "flac": ("flac", "flac", "s16", 0),
    "ogg": ("ogg", "libopus", "s16", 48000),
    "mp3": ("mp3", "libmp3lame", "s16p", 64000),
}


def recording_rate(fmt: RecordingFormat, source_rate: int) -> int:
    """The sample rate a ``fmt`` recording of ``source_rate`` audio is written at: the source's
    own when the format allows it, else the nearest rate above that it does allow."""
    allowed = {"ogg": OPUS_RATES, "mp3": MP3_RATES}.get(fmt)
    if allowed is None or source_rate in allowed:
        return source_rate
    above = sorted(r for r in allowed if r >= source_rate)
    return above[0] if above else max(allowed)


class StereoFileWriter:
    """One stereo PCM16 file written as it goes (see module doc).

    Args:
        path: where to write (created or truncated).
        fmt: ``wav``, ``flac``, ``ogg`` (Opus) or ``mp3``.
        sample_rate: samples per second of each channel (check :func:`recording_rate`).

    Raises:
        AudioError: a rate the format does not allow, PyAV missing for a compressed format, or
            the file cannot be opened.
    """

    def __init__(self, path: str | Path, fmt: RecordingFormat, sample_rate: int) -> None:
        self.path = Path(path)
        self.format = fmt
        self.sample_rate = sample_rate
        self.frames_written = 0
        self.closed = False
        self._wav: wave.Wave_write | None = None
        self._pending = np.zeros((0, 2), dtype="<i2")
        if recording_rate(fmt, sample_rate) != sample_rate:
            raise AudioError(f"{fmt} recordings cannot be written at {sample_rate} Hz")
        if fmt == "wav":
            try:  # our own file object: wave.open(path) fails noisily on a bad path
                self._file = self.path.open("wb")
            except OSError as exc:
                raise AudioError(f"cannot write {self.path}: {exc.strerror}") from exc
            self._wav = wave.open(self._file, "wb")  # noqa: SIM115 (closed by close)
            self._wav.setnchannels(2)
            self._wav.setsampwidth(2)
            self._wav.setframerate(sample_rate)
            return
        if fmt not in _ENCODERS:
            raise AudioError(f"unknown recording format {fmt!r}; use wav, flac, ogg or mp3")
        container, codec, sample_fmt, bits = _ENCODERS[fmt]
        require_av(f"{fmt} recordings")
        with av_errors(f"cannot open {self.path}"):
            try:
                self._out = av.open(str(self.path), "w", format=container)
            except OSError as exc:
                raise AudioError(f"cannot write {self.path}: {exc.strerror}") from exc
            stream = self._out.add_stream(codec, rate=sample_rate)
            assert isinstance(stream, av.AudioStream)
            ctx = stream.codec_context
            ctx.layout = "stereo"
            ctx.format = sample_fmt
            if bits:
                ctx.bit_rate = bits
            ctx.open()
        self._stream = stream
        self._planar = sample_fmt.endswith("p")
        self._frame_size = ctx.frame_size or 4096  # FLAC takes any size
        self._pts = 0

    def write(self, left: np.ndarray, right: np.ndarray) -> None:
        """Append ``left`` and ``right`` (int16 arrays of equal length) to the file."""
        if self.closed:
            raise AudioError("the recording is closed")
        if len(left) != len(right):
            raise AudioError(f"channels differ in length: {len(left)} and {len(right)}")
        if not len(left):
            return
        block = np.column_stack((left, right)).astype("<i2", copy=False)
        self.frames_written += len(block)
        if self._wav is not None:
            self._wav.writeframes(block.tobytes())
            return
        self._pending = np.concatenate((self._pending, block))
        size = self._frame_size
        whole = len(self._pending) // size * size
        if whole:
            self._encode(self._pending[:whole])
            self._pending = self._pending[whole:]

    def close(self) -> None:
        """Finish the file (sizes, the encoder's last frames, the trailer); idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._wav is not None:
            try:
                self._wav.close()  # patches the header's sizes
            finally:
                self._file.close()
            return
        with av_errors(f"cannot finish {self.path}"):
            try:
                if len(self._pending):  # both encoders take a short last frame
                    self._encode(self._pending)
                self._out.mux(self._stream.encode(None))
            finally:
                self._out.close()

    def _encode(self, block: np.ndarray) -> None:
        size = self._frame_size
        with av_errors(f"cannot encode {self.path}"):
            for i in range(0, len(block), size):
                piece = block[i : i + size]
                if self._planar:
                    frame = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(piece.T), format="s16p", layout="stereo"
                    )
                else:
                    frame = av.AudioFrame.from_ndarray(
                        piece.reshape(1, -1), format="s16", layout="stereo"
                    )
                frame.sample_rate = self.sample_rate
                frame.pts = self._pts
                self._pts += len(piece)
                self._out.mux(self._stream.encode(frame))
