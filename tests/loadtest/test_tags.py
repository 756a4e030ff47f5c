"""The frame tag codec, purely."""

from __future__ import annotations

import pytest

from switchboard.audio import ulaw_to_pcm16
from switchboard.loadtest.tags import (
    FRAME_BYTES,
    MAGIC,
    TAG_BYTES,
    TagScanner,
    decode_tag,
    tagged_frame,
)


@pytest.mark.parametrize("index", [0, 1, 9, 10, 255, 4096, 123_456, 2**32 - 1])
def test_round_trip(index: int) -> None:
    frame = tagged_frame(index)
    assert len(frame) == FRAME_BYTES
    assert decode_tag(frame) == index


def test_out_of_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        tagged_frame(-1)
    with pytest.raises(ValueError, match="out of range"):
        tagged_frame(2**32)


def test_tagged_frame_is_quiet() -> None:
    pcm = ulaw_to_pcm16(tagged_frame(0xDEADBEEF))
    samples = [int.from_bytes(pcm[i : i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    assert max(abs(s) for s in samples) <= 124


def test_corrupted_tag_is_rejected() -> None:
    frame = bytearray(tagged_frame(77))
    frame[TAG_BYTES - 1] ^= 0x01  # checksum nibble
    assert decode_tag(frame) is None
    frame = bytearray(tagged_frame(77))
    frame[len(MAGIC)] = 0x12  # not a nibble code
    assert decode_tag(frame) is None
    assert decode_tag(b"\xff" * FRAME_BYTES) is None
    assert decode_tag(MAGIC) is None  # too short


def test_scanner_aligned_frames() -> None:
    scanner = TagScanner()
    found = [k for i in range(20) for k in scanner.feed(tagged_frame(i))]
    assert found == list(range(20))
    assert scanner.bytes_seen == 20 * FRAME_BYTES


@pytest.mark.parametrize("shift", [1, 3, 7, 13, 80, 159])
@pytest.mark.parametrize("piece", [1, 5, 37, 160, 333])
def test_scanner_finds_tags_split_anywhere(shift: int, piece: int) -> None:
    stream = b"\xff" * shift + b"".join(tagged_frame(i) for i in range(12))
    scanner = TagScanner()
    found: list[int] = []
    for at in range(0, len(stream), piece):
        found += scanner.feed(stream[at : at + piece])
    assert found == list(range(12))


def test_scanner_ignores_other_audio() -> None:
    scanner = TagScanner()
    noise = bytes(range(256)) * 3  # every code, including the magic's bytes, but not the magic
    assert MAGIC not in noise
    assert scanner.feed(noise) == []
    assert scanner.feed(tagged_frame(5)) == [5]
