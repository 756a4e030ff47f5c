"""Opus (RFC 6716) packets ⇄ PCM16, one stateful encoder or decoder per stream.

Opus is packetised: each packet stands alone on the wire (one RTP payload, one WebCodecs
``EncodedAudioChunk``, one ``/v1/stream`` binary message), so the encoder returns a *list* of
packets and the decoder takes one packet per call. Packets are 20 ms by default, the RTP
telephony norm (RFC 7587); the encoder holds back the remainder of a piece of PCM until a whole
packet's worth has arrived, and :meth:`OpusEncoder.flush` pads the last one with silence.

Two backends, one behaviour (both are libopus, so their packets interoperate):

- ``"libopus"`` (preferred): libopus called directly through ctypes (:mod:`._libopus`) —
  PyAV's bundled copy or the system's ``libopus.so.0``. The decoder decodes at the stream's own
  rate; one foreign call per packet.
- ``"pyav"`` (fallback): FFmpeg's libopus wrapper. FFmpeg always decodes at 48 kHz, so the
  decoder resamples to the stream's rate with FFmpeg's resampler (which holds back a
  millisecond or two), and every packet goes through FFmpeg frame/packet objects.

A missing packet is concealed by libopus itself (:meth:`OpusDecoder.conceal`): one frame of the
last packet's configuration, as RFC 6716 §4.4 describes.

Codec state is per instance and never shared: Opus predicts each packet from the previous
ones, so two calls sharing an encoder would corrupt each other's audio (tested).
"""

from __future__ import annotations

from typing import Literal, Protocol

from switchboard.audio import _libopus, _pyav
from switchboard.audio._pyav_opus import PyavOpusDecoder, PyavOpusEncoder
from switchboard.errors import AudioError

__all__ = [
    "OPUS_FRAME_MS",
    "OPUS_RATES",
    "OpusBackend",
    "OpusDecoder",
    "OpusEncoder",
    "default_opus_bitrate",
    "opus_backends",
]

#: Rates an Opus stream can be encoded from and decoded to here (12 kHz is Opus-legal too,
#: but nothing in a call uses it).
OPUS_RATES: frozenset[int] = frozenset({8000, 16000, 24000, 48000})
#: Packet durations the encoder produces (RFC 6716 frame sizes of 10 ms and up).
OPUS_FRAME_MS: frozenset[int] = frozenset({10, 20, 40, 60})

#: ``"libopus"`` (direct, fast) or ``"pyav"`` (through FFmpeg).
OpusBackend = Literal["libopus", "pyav"]


def default_opus_bitrate(sample_rate: int) -> int:
    """Bits per second for speech at ``sample_rate`` (RFC 7587 §3.1.1's ranges, upper half)."""
    return {8000: 16000, 16000: 24000, 24000: 32000, 48000: 48000}[_check(sample_rate)]


def opus_backends() -> list[OpusBackend]:
    """The backends usable here, preferred first (empty: Opus is unavailable)."""
    found: list[OpusBackend] = []
    if _libopus.load_libopus() is not None:
        found.append("libopus")
    if _pyav.AV_AVAILABLE:
        found.append("pyav")
    return found


def _backend(requested: OpusBackend | None) -> OpusBackend:
    available = opus_backends()
    if requested is None:
        if not available:
            hint = _pyav.INSTALL_HINT
            raise AudioError(
                f"Opus needs libopus: {hint} (PyAV carries it) or the system's libopus0"
            )
        return available[0]
    if requested not in ("libopus", "pyav"):
        raise AudioError(f"unknown Opus backend {requested!r}")
    if requested not in available:
        raise AudioError(f"the {requested!r} Opus backend is not available here")
    return requested


def _check(sample_rate: int) -> int:
    if sample_rate not in OPUS_RATES:
        raise AudioError(f"Opus runs at {sorted(OPUS_RATES)} Hz, not {sample_rate}")
    return sample_rate


class _FrameEncoder(Protocol):
    def encode(self, frame: bytes) -> list[bytes]: ...
    def close(self) -> None: ...


class _PacketDecoder(Protocol):
    def decode(self, packet: bytes) -> bytes: ...
    def conceal(self, toc: int) -> bytes: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


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
        max_bandwidth_hz: the widest audio band the encoder may code: 4000, 6000, 8000,
            12000 or 20000 (default: whatever ``sample_rate`` allows). A leg that carries
            16 kHz audio onwards (Telnyx ``OPUS``) needs no more than 8000: coding more costs
            CPU and bits the far end throws away.
        backend: ``"libopus"`` or ``"pyav"``; default the first of :func:`opus_backends`.
            Both give the same packets from the same libopus version.

    Raises:
        AudioError: bad parameters, or no libopus at all (``pip install
            'switchboard-voice[codecs]'``, or the system's ``libopus0``).
    """

    __slots__ = (
        "_buf",
        "_codec",
        "_encode_frame",
        "backend",
        "frame_bytes",
        "frame_ms",
        "sample_rate",
    )

    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        frame_ms: int = 20,
        bitrate: int | None = None,
        complexity: int = 5,
        application: str = "audio",
        max_bandwidth_hz: int | None = None,
        backend: OpusBackend | None = None,
    ) -> None:
        self.sample_rate = _check(sample_rate)
        if frame_ms not in OPUS_FRAME_MS:
            raise AudioError(f"Opus packets here last {sorted(OPUS_FRAME_MS)} ms, not {frame_ms}")
        if not 0 <= complexity <= 10:
            raise AudioError(f"Opus complexity is 0–10, not {complexity}")
        if application not in _libopus.APPLICATIONS:
            raise AudioError(f"unknown Opus application {application!r}")
        if max_bandwidth_hz is not None and max_bandwidth_hz not in _libopus.BANDWIDTHS:
            bands = sorted(_libopus.BANDWIDTHS)
            raise AudioError(f"Opus bandwidths are {bands} Hz, not {max_bandwidth_hz}")
        self.backend = _backend(backend)
        self.frame_ms = frame_ms
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        engine = _libopus.LibopusEncoder if self.backend == "libopus" else PyavOpusEncoder
        self._codec: _FrameEncoder = engine(
            sample_rate,
            frame_ms,
            bitrate=bitrate or default_opus_bitrate(sample_rate),
            complexity=complexity,
            app=application,
            max_bandwidth_hz=max_bandwidth_hz,
        )
        self._encode_frame = self._codec.encode
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """PCM bytes held back, waiting for a whole packet's worth."""
        return len(self._buf)

    def encode(self, pcm: bytes) -> list[bytes]:
        """Add PCM16; return the whole packets now available, oldest first."""
        n = self.frame_bytes
        buf = self._buf
        if len(pcm) == n and not buf:  # a call's steady state: one frame in, one packet out
            return self._encode_frame(pcm)
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
        buf += pcm
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

    def close(self) -> None:
        """Free the codec state now (it is freed on garbage collection otherwise)."""
        self._codec.close()


class OpusDecoder:
    """Opus packets → PCM16 mono at ``sample_rate`` (one stream's decoder).

    Args:
        sample_rate: output rate: 8000, 16000, 24000 or 48000 (any packet decodes at any rate).
        backend: as for :class:`OpusEncoder`.

    Raises:
        AudioError: on a packet libopus rejects (the decoder stays usable), or no libopus.
    """

    __slots__ = ("_codec", "_decode", "_toc", "backend", "sample_rate")

    def __init__(self, sample_rate: int = 48000, *, backend: OpusBackend | None = None) -> None:
        self.sample_rate = _check(sample_rate)
        self.backend = _backend(backend)
        self._codec: _PacketDecoder = (
            _libopus.LibopusDecoder(sample_rate)
            if self.backend == "libopus"
            else PyavOpusDecoder(sample_rate)
        )
        self._decode = self._codec.decode
        self._toc: int | None = None

    def decode(self, packet: bytes) -> bytes:
        """Decode one packet (any Opus duration, 2.5–120 ms) to PCM16."""
        if not packet:  # libopus would take a zero-length packet for a lost one
            raise AudioError("empty Opus packet (a lost packet is concealed with conceal())")
        pcm = self._decode(packet)
        self._toc = packet[0]
        return pcm

    def conceal(self) -> bytes:
        """PCM16 standing in for one missing packet (libopus PLC).

        It lasts one Opus frame of the last packet's configuration: 20 ms for 20 ms packets.

        Before any packet has arrived there is nothing to extrapolate from: 20 ms of silence.
        """
        if self._toc is None:
            return bytes(self.sample_rate * 20 // 1000 * 2)
        return self._codec.conceal(self._toc)

    def reset(self) -> None:
        """Forget the codec's history (a new stream on the same object)."""
        self._codec.reset()
        self._toc = None

    def close(self) -> None:
        """Free the codec state now (it is freed on garbage collection otherwise)."""
        self._codec.close()
