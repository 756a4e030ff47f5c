"""Opus through PyAV (FFmpeg's libopus wrapper): the fallback when libopus cannot be loaded
directly (:mod:`._libopus`). Private; :mod:`switchboard.audio.opus` is the public face.

FFmpeg's libopus decoder always decodes at 48 kHz (whatever is asked), so the decoder here
resamples to the stream's rate with FFmpeg's resampler. A lost packet is concealed by decoding
a packet of the last packet's TOC byte with a zero-length frame, which RFC 6716 §3.2.1 and
libopus treat as "lost — run the concealment".
"""

from __future__ import annotations

import numpy as np

from switchboard.audio._pyav import (
    av,
    av_errors,
    codec_context,
    frames_to_pcm,
    mono_resampler,
    pcm_frame,
)

__all__ = ["PyavOpusDecoder", "PyavOpusEncoder"]

_DECODE_RATE = 48000


class PyavOpusEncoder:
    """One FFmpeg ``libopus`` encoder context: PCM16 frames → packets."""

    __slots__ = ("_ctx", "_pts", "sample_rate")

    def __init__(
        self,
        sample_rate: int,
        frame_ms: int,
        *,
        bitrate: int,
        complexity: int,
        app: str,
        max_bandwidth_hz: int | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        options = {
            "frame_duration": str(frame_ms),
            "application": app,
            "compression_level": str(complexity),
        }
        if max_bandwidth_hz is not None:  # FFmpeg maps it to OPUS_SET_MAX_BANDWIDTH
            options["cutoff"] = str(max_bandwidth_hz)
        self._ctx = codec_context(
            "libopus",
            "w",
            sample_rate=sample_rate,
            sample_format="s16",
            bit_rate=bitrate,
            options=options,
        )
        self._pts = 0

    def encode(self, frame: bytes) -> list[bytes]:
        """One frame of PCM16 → the packets FFmpeg releases (one, for libopus)."""
        samples = np.frombuffer(frame, dtype="<i2")
        with av_errors("Opus encoding failed"):
            packets = self._ctx.encode(pcm_frame(samples, self.sample_rate, self._pts))
        self._pts += len(samples)
        return [bytes(p) for p in packets]

    def close(self) -> None:
        """Nothing to do now: PyAV frees the context when it is collected."""


class PyavOpusDecoder:
    """One FFmpeg ``libopus`` decoder context, resampled from 48 kHz to ``sample_rate``."""

    __slots__ = ("_ctx", "_resampler", "sample_rate")

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._ctx = codec_context("libopus", "r")
        self._resampler = mono_resampler(sample_rate) if sample_rate != _DECODE_RATE else None

    def decode(self, packet: bytes) -> bytes:
        """One non-empty packet → PCM16 (less what the resampler holds back)."""
        with av_errors(f"bad Opus packet ({len(packet)} bytes)"):
            frames = self._ctx.decode(av.Packet(packet))
        return frames_to_pcm(frames, self._resampler)

    def conceal(self, toc: int) -> bytes:
        """PLC for one lost frame of the configuration in TOC byte ``toc``."""
        # TOC with frame-count code 0 and no frame bytes: "this frame was lost" (RFC 6716 §3.2.1)
        with av_errors("Opus packet-loss concealment failed"):
            frames = self._ctx.decode(av.Packet(bytes([toc & 0xFC])))
        return frames_to_pcm(frames, self._resampler)

    def reset(self) -> None:
        """Forget the codec's history and the resampler's."""
        with av_errors("Opus decoder reset failed"):
            self._ctx.flush_buffers()
        if self._resampler is not None:
            self._resampler = mono_resampler(self.sample_rate)

    def close(self) -> None:
        """Nothing to do now: PyAV frees the context when it is collected."""
