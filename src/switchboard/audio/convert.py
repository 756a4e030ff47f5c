"""Converting :class:`AudioChunk` objects between formats and rates.

:func:`convert` is the one-shot form (stateless: fine for a whole utterance or file).
:class:`StreamConverter` is the per-direction streaming form the bridge uses: it keeps a
:class:`Resampler` so consecutive chunks join without clicks, and passes audio through untouched
when source and target are the same (μ-law 8 kHz phone audio to a provider that accepts μ-law).
"""

from __future__ import annotations

from switchboard.audio.fir import FirResampler, integer_ratio
from switchboard.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.audio.resample import Resampler, check_rate
from switchboard.errors import AudioError
from switchboard.providers.base import AudioChunk, AudioFormat, AudioSpec

__all__ = ["StreamConverter", "convert", "decode_to_pcm16", "encode_from_pcm16"]


def decode_to_pcm16(data: bytes, fmt: AudioFormat) -> bytes:
    """Raw audio in ``fmt`` → PCM16 LE (same rate)."""
    match fmt:
        case AudioFormat.PCM16:
            if len(data) % 2:
                raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(data)}")
            return data
        case AudioFormat.ULAW:
            return ulaw_to_pcm16(data)
        case AudioFormat.ALAW:
            return alaw_to_pcm16(data)
        case _:
            raise AudioError(f"cannot decode {fmt} audio (only PCM16, μ-law and A-law are raw)")


def encode_from_pcm16(pcm: bytes, fmt: AudioFormat) -> bytes:
    """PCM16 LE → raw audio in ``fmt`` (same rate)."""
    match fmt:
        case AudioFormat.PCM16:
            return pcm
        case AudioFormat.ULAW:
            return pcm16_to_ulaw(pcm)
        case AudioFormat.ALAW:
            return pcm16_to_alaw(pcm)
        case _:
            raise AudioError(f"cannot encode {fmt} audio (only PCM16, μ-law and A-law are raw)")


def convert(chunk: AudioChunk, fmt: AudioFormat, rate: int) -> AudioChunk:
    """Return ``chunk`` as ``fmt`` at ``rate`` Hz (one shot; the resampler is flushed)."""
    check_rate(rate)
    check_rate(chunk.sample_rate)
    if chunk.format is fmt and chunk.sample_rate == rate:
        return chunk
    pcm = decode_to_pcm16(chunk.data, chunk.format)
    if chunk.sample_rate != rate:
        rs = Resampler(chunk.sample_rate, rate)
        pcm = rs.process(pcm, last=True)
    return AudioChunk(encode_from_pcm16(pcm, fmt), fmt, rate, chunk.timestamp)


class StreamConverter:
    """Streaming conversion of one direction of a call from ``source`` to ``target``."""

    __slots__ = ("_resampler", "passthrough", "source", "target")

    def __init__(self, source: AudioSpec, target: AudioSpec) -> None:
        check_rate(source.sample_rate)
        check_rate(target.sample_rate)
        for spec in (source, target):
            if spec.format.bytes_per_sample == 0:
                raise AudioError(f"cannot stream-convert {spec.format} audio")
        self.source = source
        self.target = target
        self.passthrough = source == target
        # Integer ratios (8k↔16k/24k/48k) use the low-latency polyphase FIR: soxr's HQ stream
        # holds ~60 ms per direction and releases it in bursts (docs/benchmarks.md, Capacity).
        self._resampler: Resampler | FirResampler | None = None
        if source.sample_rate != target.sample_rate:
            self._resampler = (
                FirResampler(source.sample_rate, target.sample_rate)
                if integer_ratio(source.sample_rate, target.sample_rate) is not None
                else Resampler(source.sample_rate, target.sample_rate)
            )

    def process(self, data: bytes) -> bytes:
        """Convert one piece of ``source`` audio to ``target`` audio (may return b"")."""
        if self.passthrough:
            return data
        pcm = decode_to_pcm16(data, self.source.format)
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        return encode_from_pcm16(pcm, self.target.format)

    def flush(self) -> bytes:
        """Return the audio the resampler still holds, converted, and start afresh."""
        if self._resampler is None:
            return b""
        return encode_from_pcm16(self._resampler.flush(), self.target.format)

    def reset(self) -> None:
        """Drop resampler state (after a barge-in discards audio in flight)."""
        if self._resampler is not None:
            self._resampler.reset()
