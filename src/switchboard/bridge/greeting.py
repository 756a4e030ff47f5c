"""Recorded greetings: an agent's ``greeting_audio`` file as carrier audio, decoded once.

A greeting file (WAV, MP3 or Ogg/Opus) is decoded and converted the first time a call needs it
in a given carrier format, then kept: every call to the agent plays the same bytes, and
decoding an MP3 per call would be wasted work. The session plays it through the bridge core
like an agent reply (paced, marked, interruptible, in the transcript under ``greeting``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from switchboard.audio import convert, read_audio_file
from switchboard.media import AudioChunk, AudioFormat, AudioSpec

__all__ = ["greeting_audio"]


def greeting_audio(path: Path, spec: AudioSpec) -> bytes:
    """The greeting file at ``path`` as raw ``spec`` audio (the carrier's format).

    Raises:
        AudioError: the file cannot be read or decoded (PyAV missing for MP3/Ogg).
    """
    return _cached(str(path), path.stat().st_mtime_ns, spec.format, spec.sample_rate)


@functools.lru_cache(maxsize=64)
def _cached(path: str, _mtime_ns: int, fmt: AudioFormat, rate: int) -> bytes:
    pcm = read_audio_file(path, rate)
    return convert(AudioChunk(pcm, AudioFormat.PCM16, rate), fmt, rate).data
