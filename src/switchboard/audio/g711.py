"""G.711 μ-law and A-law ⇄ PCM16, bit-exact with CPython's ``audioop``.

``audioop`` is deprecated and removed in Python 3.13, so the codec is table driven with numpy:
the tables are computed once at import from the ITU-T G.711 segment algorithm exactly as
``audioop.c`` implements it (14-bit μ-law input ``sample >> 2``, 13-bit A-law input
``sample >> 3``). Tests compare all 65,536 PCM16 inputs and all 256 codes with ``audioop``.

All functions take and return ``bytes``; PCM16 is signed 16-bit little-endian, mono. When the
optional C accelerator (``_g711.c``, built by setup.py where a compiler exists) is importable
the public functions use it — numpy's fixed cost per call (~0.8 µs) would otherwise dominate a
20 ms frame; the numpy paths stay available as ``numpy_*`` and are tested against audioop too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from switchboard.errors import AudioError

__all__ = [
    "ACCELERATED",
    "alaw_to_pcm16",
    "numpy_alaw_to_pcm16",
    "numpy_pcm16_to_alaw",
    "numpy_pcm16_to_ulaw",
    "numpy_ulaw_to_pcm16",
    "pcm16_to_alaw",
    "pcm16_to_ulaw",
    "ulaw_to_pcm16",
]

_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_PCM16_LE = np.dtype("<i2")


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit, as audioop
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + (0x84 >> 2)
    seg = np.searchsorted(_SEG_UEND, mag, side="left")
    code = np.where(
        seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0xF)
    )
    table = (code ^ mask).astype(np.uint8)
    # Index by the uint16 view of the sample: reorder from "-32768..32767" to "0..65535".
    return np.roll(table, -32768)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit, as audioop
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    segc = np.minimum(seg, 7)
    quant = np.where(segc < 2, (mag >> 1) & 0xF, (mag >> segc) & 0xF)
    code = np.where(seg >= 8, 0x7F, (segc << 4) | quant)
    return np.roll((code ^ mask).astype(np.uint8), -32768)


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(_PCM16_LE)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(_PCM16_LE)


_ULAW_ENC = _ulaw_encode_table()
_ALAW_ENC = _alaw_encode_table()
_ULAW_DEC = _ulaw_decode_table()
_ALAW_DEC = _alaw_decode_table()


def _pcm_view(pcm: bytes) -> npt.NDArray[np.uint16]:
    if len(pcm) % 2:
        raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<u2")


def numpy_pcm16_to_ulaw(pcm: bytes) -> bytes:
    """Encode PCM16 LE to μ-law with the numpy tables (the portable path)."""
    return bytes(_ULAW_ENC.take(_pcm_view(pcm)).tobytes())


def numpy_pcm16_to_alaw(pcm: bytes) -> bytes:
    """Encode PCM16 LE to A-law with the numpy tables (the portable path)."""
    return bytes(_ALAW_ENC.take(_pcm_view(pcm)).tobytes())


def numpy_ulaw_to_pcm16(ulaw: bytes) -> bytes:
    """Decode μ-law to PCM16 LE with the numpy tables (the portable path)."""
    return bytes(_ULAW_DEC.take(np.frombuffer(ulaw, dtype=np.uint8)).tobytes())


def numpy_alaw_to_pcm16(alaw: bytes) -> bytes:
    """Decode A-law to PCM16 LE with the numpy tables (the portable path)."""
    return bytes(_ALAW_DEC.take(np.frombuffer(alaw, dtype=np.uint8)).tobytes())


# The public codecs: the C functions themselves when the optional accelerator was built
# (setup.py; no Python wrapper: its call would cost as much as the work on a 20 ms frame), else
# numpy. Both raise AudioError on odd-length PCM16.
pcm16_to_ulaw: Callable[[bytes], bytes] = numpy_pcm16_to_ulaw
pcm16_to_alaw: Callable[[bytes], bytes] = numpy_pcm16_to_alaw
ulaw_to_pcm16: Callable[[bytes], bytes] = numpy_ulaw_to_pcm16
alaw_to_pcm16: Callable[[bytes], bytes] = numpy_alaw_to_pcm16
try:
    from switchboard.audio import _g711
except ImportError:  # pragma: no cover - depends on how the package was built
    ACCELERATED = False
else:
    ACCELERATED = True
    pcm16_to_ulaw = _g711.pcm16_to_ulaw
    pcm16_to_alaw = _g711.pcm16_to_alaw
    ulaw_to_pcm16 = _g711.ulaw_to_pcm16
    alaw_to_pcm16 = _g711.alaw_to_pcm16
