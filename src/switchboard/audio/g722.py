"""G.722 (ITU-T, 64 kbit/s sub-band ADPCM) ⇄ PCM16 16 kHz, one stateful codec per stream (PyAV).

G.722 carries 16 kHz audio in 4 bits a sample: 20 ms is 320 samples in 160 bytes. It is a byte
stream — any whole number of bytes decodes — but ADPCM predicts every sample from the ones
before, so each direction of each call needs its own encoder and decoder. (RTP advertises it
with an 8000 Hz clock, an RFC 1890 mistake kept for compatibility, RFC 3551 §4.5.2; the audio
is 16 kHz regardless.) FFmpeg's own G.722 codec does the work; the encoder is fed whole 20 ms
frames and keeps the remainder.
"""

from __future__ import annotations

import numpy as np

from switchboard.audio._pyav import av, av_errors, codec_context, frames_to_pcm, pcm_frame
from switchboard.errors import AudioError

__all__ = ["G722_RATE", "G722Decoder", "G722Encoder"]

#: G.722's audio sample rate (whatever the RTP clock says).
G722_RATE = 16000
_FRAME_SAMPLES = 320  # 20 ms


class G722Encoder:
    """PCM16 mono 16 kHz → G.722 bytes, in whole 20 ms frames (160 bytes each)."""

    __slots__ = ("_buf", "_ctx", "_pts")

    def __init__(self) -> None:
        self._ctx = codec_context("g722", "w", sample_rate=G722_RATE, sample_format="s16")
        self._buf = bytearray()
        self._pts = 0

    @property
    def pending(self) -> int:
        """PCM bytes held back, waiting for a whole 20 ms frame."""
        return len(self._buf)

    def encode(self, pcm: bytes) -> bytes:
        """Add PCM16; return the G.722 of every whole 20 ms frame now available."""
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
        self._buf += pcm
        n = _FRAME_SAMPLES * 2
        whole = len(self._buf) // n * n
        out = b"".join(self._encode(bytes(self._buf[i : i + n])) for i in range(0, whole, n))
        del self._buf[:whole]
        return out

    def flush(self) -> bytes:
        """Encode the remainder padded with silence to a whole frame (or nothing)."""
        if not self._buf:
            return b""
        frame = bytes(self._buf) + bytes(_FRAME_SAMPLES * 2 - len(self._buf))
        self._buf.clear()
        return self._encode(frame)

    def reset(self) -> None:
        """Drop the PCM held back (barge-in); the ADPCM state carries on, as the far end's does."""
        self._buf.clear()

    def _encode(self, frame: bytes) -> bytes:
        samples = np.frombuffer(frame, dtype="<i2")
        with av_errors("G.722 encoding failed"):
            packets = self._ctx.encode(pcm_frame(samples, G722_RATE, self._pts))
        self._pts += len(samples)
        return b"".join(bytes(p) for p in packets)


class G722Decoder:
    """G.722 bytes → PCM16 mono 16 kHz (two samples a byte)."""

    __slots__ = ("_ctx",)

    def __init__(self) -> None:
        self._ctx = codec_context("g722", "r", sample_rate=G722_RATE)

    def decode(self, data: bytes) -> bytes:
        """Decode any number of G.722 bytes (one RTP payload, typically 160)."""
        if not data:
            return b""
        with av_errors(f"bad G.722 data ({len(data)} bytes)"):
            frames = self._ctx.decode(av.Packet(data))
        return frames_to_pcm(frames, None)

    def conceal(self, ms: int = 20) -> bytes:
        """Silence for a lost payload: G.722 has no concealment of its own (G.722 Appendix IV
        is not in FFmpeg), and silence keeps the timeline."""
        return bytes(G722_RATE * ms // 1000 * 2)
