"""The frame tag: a frame number written into μ-law audio that survives G.711 passthrough.

Theory of operation
-------------------
Each 20 ms caller frame (160 μ-law bytes) starts with a 14-byte tag: a 4-byte magic made of
codes from ``0x70``-``0x7F``, the frame number as 8 nibbles and an 8-bit checksum as 2
nibbles, each nibble written as code ``0xF0 | nibble``; the rest of the frame is digital
silence (``0xFF``). Every code used is within ±120 of zero (below -48 dBFS), so a tagged frame
is silence to any voice detector, and no byte of a nibble or of silence can start the magic.

An echo of the frame comes back byte for byte when μ-law passes through untouched, but not
necessarily aligned on the carrier's 160-byte frames (a greeting or a flushed resampler shifts
the stream), so :class:`TagScanner` searches the received byte stream for the magic, keeping a
short tail so a tag split across two media messages is still found. Transcoded audio (PCM
resampled both ways) destroys tags: the scanner then simply finds none.
"""

from __future__ import annotations

__all__ = ["FRAME_BYTES", "MAGIC", "TAG_BYTES", "TagScanner", "decode_tag", "tagged_frame"]

FRAME_BYTES = 160  # 20 ms of μ-law 8 kHz
MAGIC = b"\x71\x7a\x73\x7c"
TAG_BYTES = len(MAGIC) + 8 + 2
_SILENCE = b"\xff" * FRAME_BYTES
_NIBBLE = bytes(0xF0 | n for n in range(16))


def _checksum(index: int) -> int:
    return (sum(index.to_bytes(4, "big")) ^ 0xA5) & 0xFF


def _nibbles(value: int, count: int) -> bytes:
    return bytes(_NIBBLE[(value >> (4 * (count - 1 - i))) & 0xF] for i in range(count))


def tagged_frame(index: int) -> bytes:
    """The 160-byte μ-law frame carrying frame number ``index`` (0 ≤ index < 2**32)."""
    if not 0 <= index < 1 << 32:
        raise ValueError(f"frame index {index} out of range")
    tag = MAGIC + _nibbles(index, 8) + _nibbles(_checksum(index), 2)
    return tag + _SILENCE[TAG_BYTES:]


def decode_tag(data: bytes | bytearray, at: int = 0) -> int | None:
    """The frame number of the tag starting at ``data[at]``, or None if there is no valid tag."""
    end = at + TAG_BYTES
    if len(data) < end or data[at : at + len(MAGIC)] != MAGIC:
        return None
    value = 0
    for byte in data[at + len(MAGIC) : end]:
        if byte & 0xF0 != 0xF0:
            return None
        value = (value << 4) | (byte & 0x0F)
    index, check = value >> 8, value & 0xFF
    return index if check == _checksum(index) else None


class TagScanner:
    """Finds tags in a byte stream fed in arbitrary pieces (see module docstring)."""

    def __init__(self) -> None:
        self._tail = b""
        self.bytes_seen = 0

    def feed(self, payload: bytes) -> list[int]:
        """Scan the next piece of the stream; returns the frame numbers whose tag it completed."""
        self.bytes_seen += len(payload)
        data = self._tail + payload if self._tail else payload
        found: list[int] = []
        pos = data.find(MAGIC)
        while pos >= 0:
            if pos + TAG_BYTES > len(data):
                self._tail = data[pos:]
                return found
            index = decode_tag(data, pos)
            if index is not None:
                found.append(index)
            pos = data.find(MAGIC, pos + 1)
        # keep a possible start of the magic at the very end
        keep = len(MAGIC) - 1
        tail = data[-keep:]
        cut = next((i for i in range(len(tail)) if MAGIC.startswith(tail[i:])), len(tail))
        self._tail = tail[cut:]
        return found
