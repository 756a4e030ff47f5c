"""Opus (RFC 6716) packets ⇄ PCM16, one stateful encoder or decoder per stream (libopus via PyAV).

Opus is packetised: each packet stands alone on the wire (one RTP payload, one WebCodecs
``EncodedAudioChunk``, one ``/v1/stream`` binary message), so the encoder returns a *list* of
packets and the decoder takes one packet per call. Packets are 20 ms by default, the RTP
telephony norm (RFC 7587); the encoder holds back the remainder of a piece of PCM until a whole
packet's worth has arrived, and :meth:`OpusEncoder.flush` pads the last one with silence.

The decoder always decodes at 48 kHz (FFmpeg's libopus wrapper does, whatever is asked) and
resamples to the stream's rate with FFmpeg's resampler. A missing packet is concealed by
libopus itself: :meth:`OpusDecoder.conceal` decodes a packet with the last packet's TOC byte and
a zero-length frame, which RFC 6716 §4.5 and libopus treat as "lost — run the concealment".

Codec state is per instance and never shared: Opus predicts each packet from the previous
ones, so two calls sharing an encoder would corrupt each other's audio (tested).
"""

from __future__ import annotations

import numpy as np

from switchboard.audio._pyav import (
    av,
    av_errors,
    codec_context,
    frames_to_pcm,
    mono_resampler,
    pcm_frame,
)
from switchboard.errors import AudioError

__all__ = ["OPUS_FRAME_MS", "OPUS_RATES", "OpusDecoder", "OpusEncoder", "default_opus_bitrate"]

#: Rates an Opus stream can be encoded from and decoded to here (12 kHz is Opus-legal too,
#: but nothing in a call uses it).
OPUS_RATES: frozenset[int] = frozenset({8000, 16000, 24000, 48000})
#: Packet durations the encoder produces (RFC 6716 frame sizes of 10 ms and up).
OPUS_FRAME_MS: frozenset[int] = frozenset({10, 20, 40, 60})
_DECODE_RATE = 48000


def default_opus_bitrate(sample_rate: int) -> int:
    """Bits per second for speech at ``sample_rate`` (RFC 7587 §3.1.1's ranges, upper half)."""
    return {8000: 16000, 16000: 24000, 24000: 32000, 48000: 48000}[_check(sample_rate)]


def _check(sample_rate: int) -> int:
    if sample_rate not in OPUS_RATES:
        raise AudioError(f"Opus runs at {sorted(OPUS_RATES)} Hz, not {sample_rate}")
    return sample_rate


class OpusEncoder:
    """PCM16 mono at ``sample_rate`` → Opus packets of ``frame_ms`` (one stream's encoder).

    Args:
        sample_rate: input rate: 8000, 16000, 24000 or 48000.
        frame_ms: packet duration: 10, 20 (default), 40 or 60.
        bitrate: bits per second; default :func:`default_opus_bitrate`.
        complexity: libopus complexity 0–10; 5 halves the CPU of 10 for speech (bench/audio.py).
        application: ``"audio"`` (default), ``"voip"`` or ``"lowdelay"``. ``audio`` keeps the
            waveform (~19 dB SNR on a voiced test signal at 16 kHz, 24 kb/s); ``voip`` lets
            SILK trade it for bits (~5 dB SNR, 13 kb/s, fine to the ear but not to a check by
            correlation); ``lowdelay`` is CELT only, 2.5 ms of codec delay instead of 6.5.

    Raises:
        AudioError: bad parameters, or PyAV missing (``pip install 'switchboard-voice[codecs]'``).
    """

    __slots__ = ("_buf", "_ctx", "_pts", "frame_bytes", "frame_ms", "sample_rate")

    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        frame_ms: int = 20,
        bitrate: int | None = None,
        complexity: int = 5,
        application: str = "audio",
    ) -> None:
        self.sample_rate = _check(sample_rate)
        if frame_ms not in OPUS_FRAME_MS:
            raise AudioError(f"Opus packets here last {sorted(OPUS_FRAME_MS)} ms, not {frame_ms}")
        if not 0 <= complexity <= 10:
            raise AudioError(f"Opus complexity is 0–10, not {complexity}")
        if application not in ("voip", "audio", "lowdelay"):
            raise AudioError(f"unknown Opus application {application!r}")
        self.frame_ms = frame_ms
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        self._ctx = codec_context(
            "libopus",
            "w",
            sample_rate=sample_rate,
            sample_format="s16",
            bit_rate=bitrate or default_opus_bitrate(sample_rate),
            options={
                "frame_duration": str(frame_ms),
                "application": application,
                "compression_level": str(complexity),
            },
        )
        self._buf = bytearray()
        self._pts = 0

    @property
    def pending(self) -> int:
        """PCM bytes held back, waiting for a whole packet's worth."""
        return len(self._buf)

    def encode(self, pcm: bytes) -> list[bytes]:
        """Add PCM16; return the whole packets now available, oldest first."""
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
        buf = self._buf
        buf += pcm
        n = self.frame_bytes
        packets: list[bytes] = []
        while len(buf) >= n:
            packets += self._encode_frame(bytes(buf[:n]))
            del buf[:n]
        return packets

    def flush(self) -> list[bytes]:
        """Encode the remainder padded with silence to a whole packet (or nothing)."""
        if not self._buf:
            return []
        frame = bytes(self._buf) + bytes(self.frame_bytes - len(self._buf))
        self._buf.clear()
        return self._encode_frame(frame)

    def reset(self) -> None:
        """Drop the PCM held back (barge-in); codec state carries on, as the far end's does."""
        self._buf.clear()

    def _encode_frame(self, frame: bytes) -> list[bytes]:
        samples = np.frombuffer(frame, dtype="<i2")
        with av_errors("Opus encoding failed"):
            packets = self._ctx.encode(pcm_frame(samples, self.sample_rate, self._pts))
        self._pts += len(samples)
        return [bytes(p) for p in packets]


class OpusDecoder:
    """Opus packets → PCM16 mono at ``sample_rate`` (one stream's decoder).

    Raises:
        AudioError: on a packet libopus rejects (the decoder stays usable), or PyAV missing.
    """

    __slots__ = ("_ctx", "_resampler", "_toc", "sample_rate")

    def __init__(self, sample_rate: int = 48000) -> None:
        self.sample_rate = _check(sample_rate)
        self._ctx = codec_context("libopus", "r")
        self._resampler = mono_resampler(sample_rate) if sample_rate != _DECODE_RATE else None
        self._toc: int | None = None

    def decode(self, packet: bytes) -> bytes:
        """Decode one packet (any Opus duration, 2.5–120 ms) to PCM16."""
        if not packet:
            raise AudioError("empty Opus packet (a lost packet is concealed with conceal())")
        with av_errors(f"bad Opus packet ({len(packet)} bytes)"):
            frames = self._ctx.decode(av.Packet(packet))
        self._toc = packet[0]
        return frames_to_pcm(frames, self._resampler)

    def conceal(self) -> bytes:
        """PCM16 standing in for one missing packet (libopus PLC).

        It lasts one Opus frame of the last packet's configuration: 20 ms for 20 ms packets.

        Before any packet has arrived there is nothing to extrapolate from: 20 ms of silence.
        """
        if self._toc is None:
            return bytes(self.sample_rate * 20 // 1000 * 2)
        # TOC with frame-count code 0 and no frame bytes: "this frame was lost" (RFC 6716 §3.2.1)
        lost = bytes([self._toc & 0xFC])
        with av_errors("Opus packet-loss concealment failed"):
            frames = self._ctx.decode(av.Packet(lost))
        return frames_to_pcm(frames, self._resampler)

    def reset(self) -> None:
        """Forget the codec's history (a new stream on the same object)."""
        with av_errors("Opus decoder reset failed"):
            self._ctx.flush_buffers()
        self._toc = None
        if self._resampler is not None:
            self._resampler = mono_resampler(self.sample_rate)
