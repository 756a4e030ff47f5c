"""Test signals and measures shared by the codec tests."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]


def tone(rate: int, seconds: float = 1.0, freq: float = 440.0, amp: float = 0.5) -> bytes:
    """A sine wave as PCM16 LE bytes, ``amp`` of full scale."""
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * math.pi * freq * t) * amp * 32767).astype("<i2").tobytes()


def voice(rate: int, seconds: float = 1.0, *, f0: float = 140.0) -> Samples:
    """A voiced, speech-like signal: harmonics of a wobbling pitch, amplitude modulated."""
    t = np.arange(int(rate * seconds)) / rate
    pitch = f0 * (1 + 0.1 * np.sin(2 * math.pi * 3 * t))
    phase = 2 * math.pi * np.cumsum(pitch) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0 * 1.1 < rate * 0.4)
    x = np.asarray(x) * (0.6 + 0.4 * np.sin(2 * math.pi * 2 * t))
    out: Samples = (x / np.max(np.abs(x)) * 0.5 * 32767).astype("<i2")
    return out


def samples(pcm: bytes) -> Samples:
    return np.frombuffer(pcm, dtype="<i2")


def lag_of(reference: Samples, test: Samples, *, max_lag: int) -> int:
    """Delay of ``test`` behind ``reference`` in samples (peak of the cross-correlation)."""
    ref = reference.astype(np.float64)[: len(reference) // 2]
    out = test.astype(np.float64)[: len(ref) + max_lag]
    return int(np.argmax(np.correlate(out, ref, "valid")))


def aligned_snr_db(reference: Samples, test: Samples, *, max_lag: int = 2000) -> float:
    """SNR of ``test`` against ``reference`` once the codec delay is taken out (edges ignored)."""
    lag = lag_of(reference, test, max_lag=max_lag)
    out = test.astype(np.float64)[lag:]
    n = min(len(out), len(reference))
    ref = reference.astype(np.float64)[:n]
    core = slice(n // 10, n - n // 10)
    noise = float(np.sum((ref[core] - out[:n][core]) ** 2))
    return math.inf if noise == 0 else float(10 * np.log10(np.sum(ref[core] ** 2) / noise))


def correlation(a: Samples, b: Samples) -> float:
    """Normalised correlation of two equally long stretches."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    return float(np.dot(x, y) / math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)) or 1.0))


def best_match(reference: Samples, recording: Samples) -> float:
    """Highest normalised correlation of ``reference`` with any stretch of ``recording``
    (1.0: found intact; a codec round trip of a voice scores above 0.9)."""
    ref = reference.astype(np.float64)
    rec = recording.astype(np.float64)
    if len(rec) < len(ref):
        return 0.0
    size = 1 << math.ceil(math.log2(len(rec) + len(ref)))
    dots = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    dots = dots[: len(rec) - len(ref) + 1]
    energy = np.convolve(rec * rec, np.ones(len(ref)), "valid")
    scores = dots / np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(ref, ref)))
    return float(np.max(scores))
