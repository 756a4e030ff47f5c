"""Audio plumbing for the simulated Telnyx caller: WAV in/out, resampling, wire payloads.

Only the G.711 primitives are shared with the client side; everything else (L16 byte order,
resampling) is the emulator's own, so a mistake in the client codec cannot hide here.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Literal

import numpy as np
import soxr

from switchboard.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.emulators.telnyx.wirecodecs import G722Wire, OpusWire, opus_packet_ms
from switchboard.errors import AudioError

__all__ = ["AudioSource", "WireFormat", "load_pcm16", "wav_bytes", "write_wav"]

AudioSource = Path | str | bytes | None
ByteOrder = Literal["big", "little"]


def load_pcm16(source: AudioSource, sample_rate: int) -> bytes:
    """Mono PCM16 LE at ``sample_rate`` from a WAV path, WAV bytes, or None (1 s of silence)."""
    if source is None:
        return bytes(sample_rate * 2)
    data = Path(source).read_bytes() if isinstance(source, str | Path) else source
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise AudioError("the simulated caller needs 16-bit PCM WAV audio")
            rate, channels = wav.getframerate(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"not a WAV file: {exc}") from exc
    samples = np.frombuffer(frames, dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    if rate != sample_rate:
        samples = soxr.resample(samples, rate, sample_rate).astype("<i2")
    return bytes(samples.astype("<i2").tobytes())


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """A mono 16-bit WAV file holding ``pcm``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buf.getvalue()


def write_wav(path: Path | str, pcm: bytes, sample_rate: int) -> None:
    Path(path).write_bytes(wav_bytes(pcm, sample_rate))


class WireFormat:
    """One direction's RTP payload format (PCMU / PCMA 8 kHz, L16 at its rate, OPUS 8/16 kHz,
    G722 16 kHz). OPUS and G722 are stateful: one instance per direction of a stream.

    Args:
        codec: the Telnyx codec name.
        sample_rate: L16's and OPUS's rate (PCMU/PCMA are always 8 kHz, G722 16 kHz).
        l16_byteorder: how L16 travels on the wire (RFC 3551 says big-endian; UNCONFIRMED).
    """

    def __init__(self, codec: str, sample_rate: int = 8000, l16_byteorder: ByteOrder = "big"):
        self.codec = codec.upper()
        if self.codec not in ("PCMU", "PCMA", "L16", "OPUS", "G722"):
            raise AudioError(f"the emulator does not carry {codec!r} audio")
        rates = {"L16": sample_rate, "OPUS": 8000 if sample_rate == 8000 else 16000, "G722": 16000}
        self.sample_rate = rates.get(self.codec, 8000)
        self.l16_byteorder = l16_byteorder
        self._wire: OpusWire | G722Wire | None = None
        if self.codec == "OPUS":
            self._wire = OpusWire(self.sample_rate)
        elif self.codec == "G722":
            self._wire = G722Wire()

    def payload_ms(self, payload: bytes) -> float:
        """Milliseconds of audio in one payload (the Opus TOC tells; the others by size)."""
        if self.codec == "OPUS":
            return opus_packet_ms(payload)
        if self.codec == "G722":
            return len(payload) / 8
        return len(payload) / self.bytes_per_ms

    @property
    def bytes_per_ms(self) -> int:
        """Wire bytes per millisecond (G.711 and G.722: 8; L16: 2 per sample; Opus: varies, 0)."""
        if self.codec in ("OPUS", "G722"):
            return 0 if self.codec == "OPUS" else 8
        per_sample = 2 if self.codec == "L16" else 1
        return self.sample_rate * per_sample // 1000

    def encode(self, pcm: bytes) -> bytes:
        """PCM16 LE at ``sample_rate`` → wire payload (OPUS/G722: one 20 ms frame)."""
        if self._wire is not None:
            return self._wire.encode(pcm)
        match self.codec:
            case "PCMU":
                return pcm16_to_ulaw(pcm)
            case "PCMA":
                return pcm16_to_alaw(pcm)
            case _:
                return self._l16(pcm)

    def decode(self, payload: bytes) -> bytes:
        """Wire payload → PCM16 LE at ``sample_rate`` (AudioError on an invalid one)."""
        if self._wire is not None:
            return self._wire.decode(payload)
        match self.codec:
            case "PCMU":
                return ulaw_to_pcm16(payload)
            case "PCMA":
                return alaw_to_pcm16(payload)
            case _:
                return self._l16(payload[: len(payload) // 2 * 2])

    def _l16(self, data: bytes) -> bytes:
        if self.l16_byteorder == "little":
            return data
        return bytes(np.frombuffer(data, dtype="<i2").byteswap().tobytes())
