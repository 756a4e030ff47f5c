"""The emulator's own OPUS and G722 RTP payload codecs (PyAV), one instance per direction.

Independent of ``switchboard.audio``: the same library (FFmpeg's libopus and G.722 through
PyAV) but its own framing, written from the carrier's published formats
(``docs/wire/telnyx.md#media-streaming``): an ``OPUS`` payload is one Opus packet (RFC 7587
§4.2) whose duration its TOC byte tells (RFC 6716 §3.1); a ``G722`` payload is 8 bytes per
millisecond of 16 kHz audio (RFC 3551 §4.5.2, despite the 8000 Hz RTP clock).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from switchboard.errors import AudioError

if TYPE_CHECKING:
    from av.audio.codeccontext import AudioCodecContext
    from av.audio.resampler import AudioResampler

__all__ = ["G722Wire", "OpusWire", "opus_packet_ms"]

# RFC 6716 §3.1, Table 2: frame size (ms) per TOC configuration 0..31.
_CONFIG_MS = [10, 20, 40, 60] * 3 + [10, 20] * 2 + [2.5, 5, 10, 20] * 4


def opus_packet_ms(packet: bytes) -> float:
    """Duration of an Opus packet from its TOC (and frame-count byte), RFC 6716 §3.1–3.2.

    Raises:
        AudioError: an empty packet, or a code-3 packet without its frame-count byte.
    """
    if not packet:
        raise AudioError("empty Opus packet")
    toc = packet[0]
    frame_ms = _CONFIG_MS[toc >> 3]
    match toc & 0x3:
        case 0:
            return frame_ms
        case 1 | 2:
            return 2 * frame_ms
        case _:
            if len(packet) < 2:
                raise AudioError("Opus code-3 packet without its frame count")
            return (packet[1] & 0x3F) * frame_ms


def _context(name: str, mode: str, rate: int) -> AudioCodecContext:
    try:
        import av
    except ImportError as exc:  # the emulator needs the codecs extra for these streams
        raise AudioError(f"the Telnyx emulator needs PyAV for {name}: {exc}") from exc
    ctx = av.CodecContext.create(name, "w" if mode == "w" else "r")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.layout = "mono"
    ctx.sample_rate = rate
    if mode == "w":
        ctx.format = "s16"
        if name == "libopus":
            ctx.bit_rate = 32000
    ctx.open()
    return ctx


def _pcm(frames: list[object], resampler: AudioResampler | None) -> bytes:
    import av

    out = []
    for frame in frames:
        assert isinstance(frame, av.AudioFrame)
        for piece in resampler.resample(frame) if resampler is not None else [frame]:
            out.append(piece.to_ndarray().astype("<i2").tobytes())
    return b"".join(out)


class _Wire:
    def __init__(self, name: str, rate: int) -> None:
        self.rate = rate
        self._name = name
        self._enc: AudioCodecContext | None = None
        self._dec: AudioCodecContext | None = None
        self._pts = 0

    def encode(self, pcm: bytes) -> bytes:
        """One 20 ms frame of PCM16 LE → one payload (shorter frames are padded)."""
        import av

        if self._enc is None:
            self._enc = _context(self._name, "w", self.rate)
        n = self.rate // 50
        samples = np.zeros(n, dtype="<i2")
        got = np.frombuffer(pcm[: n * 2], dtype="<i2")
        samples[: len(got)] = got
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = self.rate, self._pts
        self._pts += n
        return b"".join(bytes(p) for p in self._enc.encode(frame))


class OpusWire(_Wire):
    """Opus packets ⇄ PCM16 at ``rate`` (8 or 16 kHz)."""

    def __init__(self, rate: int) -> None:
        super().__init__("libopus", rate)
        self._resampler: AudioResampler | None = None

    def decode(self, payload: bytes) -> bytes:
        import av

        opus_packet_ms(payload)  # rejects what no Opus decoder would take
        if self._dec is None:
            self._dec = _context("libopus", "r", 48000)
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
        try:
            frames = self._dec.decode(av.Packet(payload))
        except av.error.FFmpegError as exc:
            raise AudioError(f"invalid Opus packet: {exc}") from exc
        return _pcm(list(frames), self._resampler)


class G722Wire(_Wire):
    """G.722 bytes ⇄ PCM16 at 16 kHz."""

    def __init__(self) -> None:
        super().__init__("g722", 16000)

    def decode(self, payload: bytes) -> bytes:
        import av

        if self._dec is None:
            self._dec = _context("g722", "r", 16000)
        try:
            frames = self._dec.decode(av.Packet(payload))
        except av.error.FFmpegError as exc:
            raise AudioError(f"invalid G.722 payload: {exc}") from exc
        return _pcm(list(frames), None)
