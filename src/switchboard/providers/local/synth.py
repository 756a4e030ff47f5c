"""Synthesised *caller* audio: Piper speech passed through a simulated phone line.

Used by tests and by ``switchboard demo`` to script what a caller says. The line simulation
(``docs/local-models.md#phone-line-simulation``): Piper's 22.05 kHz → 8 kHz (soxr) → 300–3400 Hz
band-pass → level to 0.7 peak → G.711 μ-law. Piper is not bit-reproducible (its noise_scale), so
tests built on this audio assert keywords, not exact strings.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from switchboard.audio import Resampler, encode_from_pcm16
from switchboard.providers.base import AudioFormat
from switchboard.providers.local.tts import PIPER_RATE, synthesize_pcm16

__all__ = ["caller_audio", "caller_wav", "conversation", "phone_line"]


def phone_line(pcm: bytes, sample_rate: int, *, peak: float = 0.7) -> bytes:
    """Band-limit PCM16 to the 300–3400 Hz telephone band and level it to ``peak``."""
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if audio.size == 0:
        return b""
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(audio.size, d=1.0 / sample_rate)
    spectrum[(freqs < 300.0) | (freqs > 3400.0)] = 0.0
    out = np.fft.irfft(spectrum, n=audio.size)
    top = float(np.max(np.abs(out)))
    if top > 0:
        out *= peak * 32767.0 / top
    return bytes(np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes())


def caller_audio(
    text: str,
    *,
    fmt: AudioFormat = AudioFormat.ULAW,
    sample_rate: int = 8000,
    lead_ms: int = 500,
    trail_ms: int = 500,
    line: bool = True,
    length_scale: float | None = None,
) -> bytes:
    """Speak ``text`` as a caller would sound on the phone (blocking; loads Piper once).

    Args:
        text: what the caller says.
        fmt: output encoding (μ-law for a Twilio/Telnyx media stream, or PCM16/A-law).
        sample_rate: output rate (8000 for phone lines).
        lead_ms: silence before the speech.
        trail_ms: silence after it.
        line: apply the telephone band-pass and levelling.
        length_scale: Piper speaking pace.

    Returns:
        Raw audio bytes in ``fmt`` at ``sample_rate``.
    """
    speech = b"".join(synthesize_pcm16(text, length_scale=length_scale))
    pcm = Resampler(PIPER_RATE, sample_rate).process(speech, last=True)
    if line:
        pcm = phone_line(pcm, sample_rate)
    pad = b"\x00\x00"
    pcm = pad * (sample_rate * lead_ms // 1000) + pcm + pad * (sample_rate * trail_ms // 1000)
    return encode_from_pcm16(pcm, fmt)


def caller_wav(text: str, path: str | Path | None = None, *, sample_rate: int = 8000) -> bytes:
    """Like :func:`caller_audio` but as a PCM16 WAV file; written to ``path`` when given."""
    pcm = caller_audio(text, fmt=AudioFormat.PCM16, sample_rate=sample_rate)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def conversation(lines: Iterable[tuple[str, float]], *, lead_s: float = 0.0) -> bytes:
    """A caller's side of a call as μ-law 8 kHz: ``lead_s`` of silence, then each line followed
    by its pause in seconds (time for the agent to answer). Blocking; loads Piper once."""
    audio = bytearray(b"\xff" * int(8000 * lead_s))  # μ-law silence
    for text, pause_s in lines:
        audio += caller_audio(text, lead_ms=0, trail_ms=int(pause_s * 1000))
    return bytes(audio)
