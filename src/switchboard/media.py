"""The shared media vocabulary: audio formats, audio chunks and resource use.

This is the bottom layer of switchboard (with :mod:`switchboard.errors`): audio codecs,
providers, carriers, the store and the bridge all speak in these types, so they import nothing
from the package but the errors. :mod:`switchboard.providers.base` re-exports them under the
seed's import path (``from switchboard.providers.base import AudioFormat, AudioChunk``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["AudioChunk", "AudioFormat", "AudioSpec", "Usage"]


class AudioFormat(StrEnum):
    """Audio encodings known to switchboard."""

    PCM16 = "pcm16"  # signed 16-bit little-endian, mono
    ULAW = "ulaw"  # G.711 μ-law, one byte per sample
    ALAW = "alaw"  # G.711 A-law, one byte per sample
    OPUS = "opus"
    MP3 = "mp3"

    @property
    def bytes_per_sample(self) -> int:
        """Bytes per mono sample for the raw formats (PCM16: 2, G.711: 1); 0 for compressed."""
        return {AudioFormat.PCM16: 2, AudioFormat.ULAW: 1, AudioFormat.ALAW: 1}.get(self, 0)


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """An audio format at a sample rate, e.g. ``AudioSpec(AudioFormat.ULAW, 8000)``."""

    format: AudioFormat
    sample_rate: int

    def duration_ms(self, nbytes: int) -> float:
        """Duration in milliseconds of ``nbytes`` of this raw audio."""
        bps = self.format.bytes_per_sample
        if bps == 0:
            raise ValueError(f"duration of {self.format} audio is not known from its size")
        return nbytes / bps * 1000.0 / self.sample_rate

    def bytes_for_ms(self, ms: float) -> int:
        """Number of bytes holding ``ms`` milliseconds of this raw audio (whole samples)."""
        return int(self.sample_rate * ms / 1000.0) * self.format.bytes_per_sample


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A piece of audio: raw bytes in ``format`` at ``sample_rate`` Hz, mono."""

    data: bytes
    format: AudioFormat = AudioFormat.PCM16
    sample_rate: int = 24000
    timestamp: float = field(default_factory=time.monotonic)

    @property
    def spec(self) -> AudioSpec:
        return AudioSpec(self.format, self.sample_rate)

    @property
    def duration_ms(self) -> float:
        return self.spec.duration_ms(len(self.data))


@dataclass(frozen=True, slots=True)
class Usage:
    """Resource use reported by a provider for one response (or summed for a call)."""

    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    cached_input_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    input_audio_seconds: float = 0.0
    output_audio_seconds: float = 0.0
    tts_characters: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            **{name: getattr(self, name) + getattr(other, name) for name in self.__slots__}
        )

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__slots__}
