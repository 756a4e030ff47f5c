"""Telnyx's compressed wideband stream codecs (``OPUS``, ``G722``) ⇄ PCM16, for one stream.

With ``stream_codec: OPUS`` or ``G722`` each media ``payload`` is one RTP payload in that codec
(protocols: ``docs/wire/telnyx.md#media-streaming``): one Opus packet (RFC 7587 §4.2), or
G.722 bytes, 160 for 20 ms (RFC 3551 §4.5.2). :class:`TelnyxMediaCodec` decodes them, in
sequence order, to PCM16 for the bridge and encodes the bridge's 20 ms PCM16 frames back, so
the rest of switchboard sees an ordinary PCM16 16 kHz stream. A lost payload is concealed
(libopus PLC; silence for G.722, which has none in FFmpeg).

Opus on the wire is 8 or 16 kHz audio (protocols: "OPUS 8/16k"), but an Opus decoder gives any
of 8/12/16/24/48 kHz and an encoder takes them: with ``pcm_rate`` (the provider's PCM rate,
24 kHz for OpenAI) the stream is decoded and encoded at that rate, so nothing resamples between
carrier and provider. Without it, whatever ``sample_rate`` the ``start`` names (RTP's Opus
clock is always 48000), we use 16 kHz unless it says 8000.

Whatever the PCM rate, the encoder codes what the wire carries: at most the wire's band
(wideband, 8 kHz, for 16 kHz audio) at the wire rate's bitrate (24 kb/s). At 24 kHz PCM
libopus would otherwise code super-wideband at 32 kb/s, bits and CPU the carrier throws away
(~10 % of the encoder's time; docs/benchmarks.md, "Opus codec").
"""

from __future__ import annotations

from switchboard.audio.g722 import G722_RATE, G722Decoder, G722Encoder
from switchboard.audio.opus import OPUS_RATES, OpusDecoder, OpusEncoder, default_opus_bitrate
from switchboard.errors import LocalProtocolError
from switchboard.media import AudioFormat, AudioSpec

__all__ = ["WIDEBAND_ENCODINGS", "WireTranscoder", "wideband_spec"]

#: Telnyx encodings this module transcodes.
WIDEBAND_ENCODINGS = frozenset({"OPUS", "G722"})


def wideband_spec(encoding: str, sample_rate: int | None, pcm_rate: int | None = None) -> AudioSpec:
    """The PCM16 spec the bridge sees for a Telnyx ``OPUS``/``G722`` stream."""
    if encoding.upper() == "G722":
        return AudioSpec(AudioFormat.PCM16, G722_RATE)
    if pcm_rate in OPUS_RATES:
        return AudioSpec(AudioFormat.PCM16, pcm_rate)
    return AudioSpec(AudioFormat.PCM16, 8000 if sample_rate == 8000 else 16000)


class WireTranscoder:
    """One Telnyx stream's ``OPUS``/``G722`` payloads ⇄ PCM16 at ``spec.sample_rate``.

    Decoding must see payloads in sequence order (both codecs predict from the past), which
    :class:`TelnyxMediaCodec` guarantees by decoding after its reorder window.

    Raises:
        AudioError: no codec library: for ``OPUS`` neither libopus (PyAV's copy or the
            system's ``libopus0``) nor PyAV; for ``G722`` PyAV missing (``pip install
            'switchboard-voice[codecs]'``).
    """

    __slots__ = ("_decoder", "_encoder", "encoding", "spec")

    def __init__(
        self, encoding: str, sample_rate: int | None = None, *, pcm_rate: int | None = None
    ) -> None:
        self.encoding = encoding.upper()
        self.spec = wideband_spec(self.encoding, sample_rate, pcm_rate)
        self._decoder: OpusDecoder | G722Decoder
        self._encoder: OpusEncoder | G722Encoder
        if self.encoding == "OPUS":
            wire_rate = 8000 if sample_rate == 8000 else 16000  # "OPUS 8/16k"
            self._decoder = OpusDecoder(self.spec.sample_rate)
            self._encoder = OpusEncoder(
                self.spec.sample_rate,
                bitrate=default_opus_bitrate(wire_rate),
                max_bandwidth_hz=wire_rate // 2,
            )
        elif self.encoding == "G722":
            self._decoder, self._encoder = G722Decoder(), G722Encoder()
        else:
            raise ValueError(f"{encoding!r} is not one of {sorted(WIDEBAND_ENCODINGS)}")

    def decode(self, payload: bytes) -> bytes:
        """One RTP payload → PCM16 (raises AudioError on a bad one)."""
        return self._decoder.decode(payload)

    def conceal(self) -> bytes:
        """PCM16 standing in for one lost payload (20 ms)."""
        return self._decoder.conceal()

    def encode(self, pcm: bytes) -> bytes:
        """One 20 ms PCM16 frame → one RTP payload.

        Raises:
            LocalProtocolError: ``pcm`` is not exactly 20 ms (an Opus packet cannot be split
                or joined inside one media message).
        """
        frame = self.spec.sample_rate // 50 * 2
        if len(pcm) != frame:
            raise LocalProtocolError(
                f"{self.encoding} media goes out in 20 ms frames ({frame} bytes), got {len(pcm)}"
            )
        if isinstance(self._encoder, OpusEncoder):
            return self._encoder.encode(pcm)[0]
        return self._encoder.encode(pcm)
