"""Audio primitives: G.711 codecs, streaming resampling, conversion and framing."""

from switchboard.audio.convert import StreamConverter, convert, decode_to_pcm16, encode_from_pcm16
from switchboard.audio.fir import FirResampler, integer_ratio
from switchboard.audio.frames import Framer
from switchboard.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.audio.resample import SUPPORTED_RATES, Resampler, check_rate

__all__ = [
    "SUPPORTED_RATES",
    "FirResampler",
    "Framer",
    "Resampler",
    "StreamConverter",
    "alaw_to_pcm16",
    "check_rate",
    "convert",
    "decode_to_pcm16",
    "encode_from_pcm16",
    "integer_ratio",
    "pcm16_to_alaw",
    "pcm16_to_ulaw",
    "ulaw_to_pcm16",
]
