"""Converting :class:`AudioChunk` objects between formats and rates.

:func:`convert` is the one-shot form (stateless: fine for a whole utterance or file).
:class:`StreamConverter` is the per-direction streaming form the bridge uses: it keeps a
:class:`Resampler` so consecutive chunks join without clicks, and passes audio through untouched
when source and target are the same (μ-law 8 kHz phone audio to a provider that accepts μ-law).

Compressed formats (PyAV, the ``codecs`` extra) mean one thing per form:

* one shot, an MP3 chunk is an MP3 file's bytes; an Opus chunk is an Ogg Opus file (RFC 7845)
  or, when it does not start with ``OggS``, a single raw Opus packet (no valid packet can start
  so: the TOC byte ``O`` announces 39 frames of 20 ms, over Opus's 120 ms limit). Encoding to
  Opus one shot writes an Ogg Opus file, since raw packets could not be told apart when joined.
* streaming, each Opus piece in is one packet (as RTP and WebCodecs carry it) and what comes out
  is a list of 20 ms packets (:meth:`StreamConverter.process_packets`); MP3 is a byte stream
  both ways. A lost Opus packet is concealed with :meth:`StreamConverter.conceal`.
"""

from __future__ import annotations

from switchboard.audio.files import decode_audio, encode_audio
from switchboard.audio.fir import FirResampler, fir_ratio
from switchboard.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.audio.mp3 import Mp3Decoder, Mp3Encoder
from switchboard.audio.opus import OPUS_RATES, OpusDecoder, OpusEncoder
from switchboard.audio.resample import Resampler, check_rate
from switchboard.errors import AudioError
from switchboard.media import AudioChunk, AudioFormat, AudioSpec

__all__ = ["StreamConverter", "convert", "decode_to_pcm16", "encode_from_pcm16"]

_RAW = (AudioFormat.PCM16, AudioFormat.ULAW, AudioFormat.ALAW)


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
            raise AudioError(
                f"cannot decode {fmt} audio sample by sample (only PCM16, μ-law and A-law are raw;"
                " use convert() or StreamConverter for compressed audio)"
            )


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
            raise AudioError(
                f"cannot encode {fmt} audio sample by sample (only PCM16, μ-law and A-law are raw;"
                " use convert() or StreamConverter for compressed audio)"
            )


def convert(chunk: AudioChunk, fmt: AudioFormat, rate: int) -> AudioChunk:
    """Return ``chunk`` as ``fmt`` at ``rate`` Hz (one shot; the resampler is flushed).

    Every :class:`AudioFormat` converts; MP3 and Opus need PyAV (see the module docstring
    for what their chunks hold).

    Raises:
        AudioError: undecodable data, an unsupported rate, or PyAV missing for MP3/Opus.
    """
    check_rate(rate)
    check_rate(chunk.sample_rate)
    if chunk.format is fmt and chunk.sample_rate == rate:
        return chunk
    pcm = _decode_whole(chunk, rate)
    return AudioChunk(_encode_whole(pcm, fmt, rate), fmt, rate, chunk.timestamp)


def _decode_whole(chunk: AudioChunk, rate: int) -> bytes:
    """``chunk`` → PCM16 at ``rate``."""
    if chunk.format in _RAW:
        pcm = decode_to_pcm16(chunk.data, chunk.format)
        if chunk.sample_rate != rate:
            pcm = Resampler(chunk.sample_rate, rate).process(pcm, last=True)
        return pcm
    if chunk.format is AudioFormat.OPUS and chunk.data[:4] != b"OggS":
        decoder = OpusDecoder(rate if rate in OPUS_RATES else 48000)
        pcm = decoder.decode(chunk.data)
        if decoder.sample_rate != rate:
            pcm = Resampler(decoder.sample_rate, rate).process(pcm, last=True)
        return pcm
    return decode_audio(chunk.data, rate)


def _encode_whole(pcm: bytes, fmt: AudioFormat, rate: int) -> bytes:
    """PCM16 at ``rate`` → ``fmt`` (a whole file for MP3 and Opus)."""
    if fmt in _RAW:
        return encode_from_pcm16(pcm, fmt)
    return encode_audio(pcm, rate, "ogg" if fmt is AudioFormat.OPUS else "mp3")


class StreamConverter:
    """Streaming conversion of one direction of a call from ``source`` to ``target``.

    Raw formats and MP3 are byte streams: :meth:`process` takes and returns bytes. Opus is
    packetised: as a source each piece is one packet; as a target use :meth:`process_packets`,
    which returns whole 20 ms packets (it works for every target, one item per piece for byte
    streams). Each converter owns its codec state; none is ever shared between streams.

    ``aligned=False``: a live stream's converter, whose integer-ratio resampler gives each
    piece's output at once, late by the filter's own delay, instead of holding the last ~4 ms of
    every piece back to keep the output aligned with the input (``audio/fir.py``).

    Raises:
        AudioError: unsupported rates, undecodable audio, or PyAV missing for MP3/Opus.
    """

    __slots__ = ("_decoder", "_encoder", "_resampler", "passthrough", "source", "target")

    def __init__(self, source: AudioSpec, target: AudioSpec, *, aligned: bool = True) -> None:
        check_rate(source.sample_rate)
        check_rate(target.sample_rate)
        self.source = source
        self.target = target
        self.passthrough = source == target
        # Decoders of compressed audio produce PCM16 at ``pcm_rate``, ideally the target's own.
        self._decoder: OpusDecoder | Mp3Decoder | None = None
        pcm_rate = source.sample_rate
        if not self.passthrough:
            match source.format:
                case AudioFormat.OPUS:
                    rate = target.sample_rate if target.sample_rate in OPUS_RATES else 48000
                    self._decoder = OpusDecoder(rate)
                    pcm_rate = rate
                case AudioFormat.MP3:
                    self._decoder = Mp3Decoder(target.sample_rate)
                    pcm_rate = target.sample_rate
        self._encoder: OpusEncoder | Mp3Encoder | None = None
        if not self.passthrough:
            match target.format:
                case AudioFormat.OPUS:
                    self._encoder = OpusEncoder(target.sample_rate)
                case AudioFormat.MP3:
                    self._encoder = Mp3Encoder(target.sample_rate)
        # Small ratios (8k↔16k/24k/48k; 16k↔24k unaligned) use the low-latency polyphase FIR:
        # soxr's HQ stream holds ~60 ms per direction and releases it in bursts
        # (docs/benchmarks.md, Capacity).
        self._resampler: Resampler | FirResampler | None = None
        if pcm_rate != target.sample_rate and not self.passthrough:
            self._resampler = (
                FirResampler(pcm_rate, target.sample_rate, aligned=aligned)
                if fir_ratio(pcm_rate, target.sample_rate, aligned=aligned) is not None
                else Resampler(pcm_rate, target.sample_rate)
            )

    def process(self, data: bytes) -> bytes:
        """Convert one piece of ``source`` audio to ``target`` audio (may return b"").

        Raises:
            AudioError: for an Opus target, whose packets must stay apart (use
                :meth:`process_packets`).
        """
        if self.passthrough:
            return data
        return self._join(self.process_packets(data))

    def process_packets(self, data: bytes) -> list[bytes]:
        """Convert one piece; the ``target`` audio as a list (Opus: one item per packet)."""
        if self.passthrough:
            return [data] if data else []
        match self._decoder:
            case OpusDecoder():
                pcm = self._decoder.decode(data)
            case Mp3Decoder():
                pcm = self._decoder.decode(data)
            case _:
                pcm = decode_to_pcm16(data, self.source.format)
        return self._emit(pcm, flush=False)

    def conceal(self) -> bytes:
        """``target`` audio standing in for one lost source packet (Opus: libopus PLC).

        For other sources it is 20 ms of silence, which is what a gap sounds like anyway.
        """
        return self._join(self.conceal_packets())

    def conceal_packets(self) -> list[bytes]:
        """:meth:`conceal`, as a list like :meth:`process_packets`."""
        if self.passthrough:
            return _passthrough_silence(self.source)
        if isinstance(self._decoder, OpusDecoder):
            return self._emit(self._decoder.conceal(), flush=False)
        rate = self._decoder.sample_rate if self._decoder is not None else self.source.sample_rate
        return self._emit(bytes(rate // 50 * 2), flush=False)

    def flush(self) -> bytes:
        """Return the audio still held (resampler, encoder, decoder), converted; start afresh."""
        return self._join(self.flush_packets())

    def flush_packets(self) -> list[bytes]:
        """:meth:`flush`, as a list like :meth:`process_packets`."""
        if self.passthrough:
            return []
        pcm = self._decoder.flush() if isinstance(self._decoder, Mp3Decoder) else b""
        return self._emit(pcm, flush=True)

    def reset(self) -> None:
        """Drop the audio in flight (after a barge-in): resampler and codec buffers."""
        if self._resampler is not None:
            self._resampler.reset()
        if self._decoder is not None:
            self._decoder.reset()
        if isinstance(self._encoder, OpusEncoder):
            self._encoder.reset()
        elif isinstance(self._encoder, Mp3Encoder):
            self._encoder.flush()  # LAME cannot drop its buffer: finish the stream, unheard

    # -- internals ---------------------------------------------------------------------------
    def _emit(self, pcm: bytes, *, flush: bool) -> list[bytes]:
        """PCM16 at the decoder's rate → target audio pieces."""
        if self._resampler is not None:
            pcm = self._resampler.process(pcm) + (self._resampler.flush() if flush else b"")
        match self._encoder:
            case OpusEncoder():
                return self._encoder.encode(pcm) + (self._encoder.flush() if flush else [])
            case Mp3Encoder():
                out = self._encoder.encode(pcm) + (self._encoder.flush() if flush else b"")
            case _:
                out = encode_from_pcm16(pcm, self.target.format)
        return [out] if out else []

    def _join(self, pieces: list[bytes]) -> bytes:
        if self.target.format is AudioFormat.OPUS and not self.passthrough:
            raise AudioError(
                "Opus output is a sequence of packets that must stay apart: use process_packets()"
            )
        return b"".join(pieces)


def _passthrough_silence(spec: AudioSpec) -> list[bytes]:
    """20 ms standing in for a lost packet when nothing is decoded (source == target)."""
    match spec.format:
        case AudioFormat.OPUS:
            # an Opus "lost frame" (TOC byte only, 20 ms CELT configuration, frame-count code 0)
            # makes the far end's decoder run its own concealment (RFC 6716 §3.2.1)
            return [bytes([31 << 3])]
        case AudioFormat.MP3:
            return []  # a byte stream has no packets to lose
        case fmt:
            return [encode_from_pcm16(bytes(spec.sample_rate // 50 * 2), fmt)]
