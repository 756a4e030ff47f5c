"""Cutting a byte stream of raw audio into fixed-length frames (20 ms for telephony)."""

from __future__ import annotations

from switchboard.errors import AudioError
from switchboard.media import AudioSpec

__all__ = ["Framer"]


class Framer:
    """Accumulates raw audio and returns whole frames of ``frame_ms``.

    Carriers expect 20 ms frames (160 bytes of μ-law at 8 kHz); providers send deltas of any
    size. ``push`` returns the complete frames available and keeps the remainder; ``flush``
    returns the remainder padded with silence to a whole frame (or nothing).
    """

    __slots__ = ("_buf", "frame_bytes", "silence_byte", "spec")

    def __init__(self, spec: AudioSpec, *, frame_ms: int = 20) -> None:
        self.spec = spec
        self.frame_bytes = spec.bytes_for_ms(frame_ms)
        if self.frame_bytes <= 0:
            raise AudioError(f"cannot frame {spec.format} audio")
        # The byte value of silence: 0xFF for μ-law, 0xD5 for A-law, 0 for PCM16.
        self.silence_byte = {"ulaw": 0xFF, "alaw": 0xD5}.get(spec.format.value, 0)
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for a whole frame."""
        return len(self._buf)

    def push(self, data: bytes) -> list[bytes]:
        """Add audio; return the whole frames now available, oldest first."""
        buf = self._buf
        buf += data
        n = self.frame_bytes
        whole = len(buf) // n * n
        if not whole:
            return []
        frames = [bytes(buf[i : i + n]) for i in range(0, whole, n)]
        del buf[:whole]
        return frames

    def flush(self) -> list[bytes]:
        """Return the remainder padded with silence to one whole frame, then forget it."""
        if not self._buf:
            return []
        frame = bytes(self._buf) + bytes([self.silence_byte]) * (self.frame_bytes - len(self._buf))
        self._buf.clear()
        return [frame]

    def clear(self) -> None:
        """Drop what is held (barge-in)."""
        self._buf.clear()
