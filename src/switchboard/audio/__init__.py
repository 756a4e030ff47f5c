"""Audio primitives: G.711, Opus and MP3 codecs, streaming resampling, conversion, framing, files.

MP3, G.722 and audio files other than WAV need PyAV (``pip install 'switchboard-voice[codecs]'``);
Opus packets need libopus, called directly: PyAV's bundled copy, or the system's ``libopus0``
without PyAV. Without them these raise :class:`~switchboard.errors.AudioError` and everything
else works.
"""

from switchboard.audio._pyav import AV_AVAILABLE
from switchboard.audio.convert import StreamConverter, convert, decode_to_pcm16, encode_from_pcm16
from switchboard.audio.files import (
    decode_audio,
    encode_audio,
    file_format_for,
    read_audio_file,
    write_audio_file,
)
from switchboard.audio.fir import FirResampler, integer_ratio
from switchboard.audio.frames import Framer
from switchboard.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.audio.mp3 import MP3_RATES, Mp3Decoder, Mp3Encoder
from switchboard.audio.opus import OPUS_RATES, OpusDecoder, OpusEncoder
from switchboard.audio.resample import SUPPORTED_RATES, Resampler, check_rate

__all__ = [
    "AV_AVAILABLE",
    "MP3_RATES",
    "OPUS_RATES",
    "SUPPORTED_RATES",
    "FirResampler",
    "Framer",
    "Mp3Decoder",
    "Mp3Encoder",
    "OpusDecoder",
    "OpusEncoder",
    "Resampler",
    "StreamConverter",
    "alaw_to_pcm16",
    "check_rate",
    "convert",
    "decode_audio",
    "decode_to_pcm16",
    "encode_audio",
    "encode_from_pcm16",
    "file_format_for",
    "integer_ratio",
    "pcm16_to_alaw",
    "pcm16_to_ulaw",
    "read_audio_file",
    "ulaw_to_pcm16",
    "write_audio_file",
]
