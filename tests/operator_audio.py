"""What the operator tests send and listen for: a pure tone (the operator's microphone) told
apart from the agent's speech-like audio in what the caller heard."""

from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import numpy as np

#: The operator's "voice": a pure tone no emulated agent speaks.
TONE_HZ = 1250.0


def tone_pcm16(seconds: float, rate: int = 16000, *, hz: float = TONE_HZ) -> bytes:
    """PCM16 LE of a pure tone at half scale."""
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * math.pi * hz * t) * 16000).astype("<i2").tobytes()


def tone_wav(path: Path, seconds: float = 30.0, rate: int = 16000) -> Path:
    """A WAV of the tone (Chromium's fake microphone plays it in a loop)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(tone_pcm16(seconds, rate))
    path.write_bytes(out.getvalue())
    return path


def frame_kinds(pcm: bytes, rate: int, *, frame_ms: int = 20, hz: float = TONE_HZ) -> str:
    """One letter per frame: ``t`` the tone, ``s`` silence, ``a`` other sound (the agent)."""
    samples = np.frombuffer(pcm[: len(pcm) & ~1], dtype="<i2").astype(np.float64)
    n = rate * frame_ms // 1000
    kinds = []
    t = np.arange(n) / rate
    probe = np.exp(-2j * math.pi * hz * t)
    for start in range(0, samples.size - n + 1, n):
        frame = samples[start : start + n]
        energy = float(np.dot(frame, frame))
        if energy / n < 200.0**2:
            kinds.append("s")
            continue
        at_tone = abs(np.dot(frame, probe)) ** 2 * 2 / n  # the energy at the tone's frequency
        kinds.append("t" if at_tone / energy > 0.6 else "a")
    return "".join(kinds)


def read_wav_pcm(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) & ~1], dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
