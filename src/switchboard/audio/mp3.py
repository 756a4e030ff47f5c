"""MP3 (MPEG-1/2/2.5 Layer III) ⇄ PCM16: a streaming decoder and a streaming encoder (PyAV).

MP3 is a byte stream of self-delimiting frames, so unlike Opus its encoded form joins and splits
freely: :class:`Mp3Decoder` takes pieces of any size (an HTTP body as it arrives, Telnyx's
``mp3`` media mode), finds the frames with FFmpeg's parser and returns PCM16 mono at the rate
asked for, whatever the stream's own rate and channel count. A leading ID3v2 tag is skipped.
Streaming decode is not gapless: the encoder's delay and padding come out as silence (a few
tens of ms); :func:`switchboard.audio.files.decode_audio` reads whole files gaplessly.

:class:`Mp3Encoder` (LAME) is for files and recordings: pieces of PCM in, MP3 frames out.
"""

from __future__ import annotations

import numpy as np

from switchboard.audio._pyav import (
    av,
    av_errors,
    codec_context,
    drain,
    frames_to_pcm,
    mono_resampler,
    pcm_frame,
    require_av,
)
from switchboard.errors import AudioError

__all__ = ["MP3_RATES", "Mp3Decoder", "Mp3Encoder"]

#: Rates MPEG audio (1, 2 and 2.5) is defined at; LAME encodes at each of them.
MP3_RATES: frozenset[int] = frozenset(
    {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}
)
#: Bytes of input with no MPEG frame in them after which the stream is declared not MP3
#: (the largest Layer III frame is 2,881 bytes; ID3v2 tags are skipped separately).
_MAX_JUNK = 16 * 1024


class Mp3Decoder:
    """MP3 byte stream → PCM16 mono at ``sample_rate`` (one stream's decoder).

    Raises:
        AudioError: on a corrupt frame, on ``_MAX_JUNK`` bytes without a frame, or PyAV missing.
    """

    __slots__ = ("_ctx", "_frames", "_head", "_junk", "_resampler", "_skip", "sample_rate")

    def __init__(self, sample_rate: int) -> None:
        require_av("MP3 decoding")
        self.sample_rate = sample_rate
        self._start()

    def _start(self) -> None:
        self._ctx = codec_context("mp3", "r")
        self._resampler = mono_resampler(self.sample_rate)
        self._head = b""  # the first bytes, until we know whether an ID3v2 tag starts the stream
        self._skip: int | None = None  # tag bytes still to skip (None: not decided yet)
        self._junk = 0
        self._frames = 0

    @property
    def frames_decoded(self) -> int:
        """MPEG frames decoded since the start (or the last flush)."""
        return self._frames

    def decode(self, data: bytes) -> bytes:
        """Feed a piece of the stream; return the PCM16 of the frames it completed."""
        data = self._strip_id3(data)
        if not data:
            return b""
        with av_errors("bad MP3 data"):
            packets = self._ctx.parse(data)
            frames = [f for p in packets for f in self._ctx.decode(p)]
        return self._collect(frames, len(data))

    def flush(self) -> bytes:
        """Return the audio still held (the parser's last frame, the resampler's tail); restart.

        Raises:
            AudioError: if bytes came in but not one MP3 frame was found in them.
        """
        saw_data = self._junk > 0 or self._frames > 0 or bool(self._head)
        with av_errors("bad MP3 data"):
            frames = [f for p in self._ctx.parse(b"") for f in self._ctx.decode(p)]
        pcm = self._collect(frames, 0)
        pcm += drain(self._resampler)
        frames_seen = self._frames
        self._start()
        if saw_data and not frames_seen:
            raise AudioError("no MP3 frames in the data")
        return pcm

    def reset(self) -> None:
        """Drop everything held (a barge-in discards audio in flight)."""
        self._start()

    def _collect(self, frames: list[av.AudioFrame], fed: int) -> bytes:
        if frames:
            self._frames += len(frames)
            self._junk = 0
        else:
            self._junk += fed
            if self._junk > _MAX_JUNK:
                raise AudioError(f"no MP3 frame in {self._junk} bytes: not an MP3 stream")
        return frames_to_pcm(frames, self._resampler)

    def _strip_id3(self, data: bytes) -> bytes:
        if self._skip is None:
            head = self._head + data
            if len(head) < 10:
                self._head = head
                return b""
            self._head = b""
            self._skip = 0
            if head.startswith(b"ID3"):
                size = _syncsafe(head[6:10])
                self._skip = 10 + size + (10 if head[5] & 0x10 else 0)  # footer flag
            data = head
        if self._skip:
            cut = min(self._skip, len(data))
            self._skip -= cut
            data = data[cut:]
        return data


def _syncsafe(b: bytes) -> int:
    """ID3v2 sizes: four bytes of seven bits each."""
    if any(x & 0x80 for x in b):
        raise AudioError("bad ID3v2 tag size")
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


class Mp3Encoder:
    """PCM16 mono at ``sample_rate`` → MP3 frames (LAME, constant bit rate).

    Args:
        sample_rate: one of :data:`MP3_RATES`.
        bitrate: bits per second (default 32 kb/s at ≤ 16 kHz, 64 kb/s above: speech).
    """

    __slots__ = ("_buf", "_ctx", "_pts", "bitrate", "frame_bytes", "sample_rate")

    def __init__(self, sample_rate: int, *, bitrate: int | None = None) -> None:
        if sample_rate not in MP3_RATES:
            raise AudioError(f"MP3 is defined at {sorted(MP3_RATES)} Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.bitrate = bitrate or (32000 if sample_rate <= 16000 else 64000)
        self._start()

    def _start(self) -> None:
        self._ctx = codec_context(
            "libmp3lame", "w", sample_rate=self.sample_rate, sample_format="s16p",
            bit_rate=self.bitrate,
        )  # fmt: skip
        self.frame_bytes = self._ctx.frame_size * 2
        self._buf = bytearray()
        self._pts = 0

    def encode(self, pcm: bytes) -> bytes:
        """Add PCM16; return the MP3 frames LAME has finished (it keeps a frame or two)."""
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
        self._buf += pcm
        n = self.frame_bytes
        whole = len(self._buf) // n * n
        out = [self._encode(bytes(self._buf[i : i + n])) for i in range(0, whole, n)]
        del self._buf[:whole]
        return b"".join(out)

    def flush(self) -> bytes:
        """Encode the remainder and drain LAME: the stream is complete; start afresh."""
        tail = self._encode(bytes(self._buf)) if self._buf else b""
        with av_errors("MP3 encoding failed"):
            tail += b"".join(bytes(p) for p in self._ctx.encode(None))
        self._start()
        return tail

    def _encode(self, frame: bytes) -> bytes:
        samples = np.frombuffer(frame, dtype="<i2")
        with av_errors("MP3 encoding failed"):
            packets = self._ctx.encode(pcm_frame(samples, self.sample_rate, self._pts, planar=True))
        self._pts += len(samples)
        return b"".join(bytes(p) for p in packets)
