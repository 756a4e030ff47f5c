"""G.711 codecs: bit-exact with CPython's audioop over every input."""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
import pytest

from switchboard.audio import alaw_to_pcm16, g711, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.errors import AudioError

ALL_PCM16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))


def _audioop() -> ModuleType:
    """The reference: CPython's audioop, in the stdlib up to 3.12 and the ``audioop-lts``
    package (the dev extra) from 3.13. Only the tests that compare against it need it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module: ModuleType = pytest.importorskip("audioop", reason="no audioop: the dev extra")
    return module


def test_ulaw_encode_matches_audioop_on_all_65536_inputs() -> None:
    assert pcm16_to_ulaw(ALL_PCM16) == _audioop().lin2ulaw(ALL_PCM16, 2)


def test_alaw_encode_matches_audioop_on_all_65536_inputs() -> None:
    assert pcm16_to_alaw(ALL_PCM16) == _audioop().lin2alaw(ALL_PCM16, 2)


def test_ulaw_decode_matches_audioop_on_all_codes() -> None:
    assert ulaw_to_pcm16(ALL_CODES) == _audioop().ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_matches_audioop_on_all_codes() -> None:
    assert alaw_to_pcm16(ALL_CODES) == _audioop().alaw2lin(ALL_CODES, 2)


def test_published_reference_points() -> None:
    # ITU-T G.711: μ-law 0xFF and A-law 0xD5 are (near) zero; extremes map to ±32124 / ±32256.
    assert ulaw_to_pcm16(b"\xff") == (0).to_bytes(2, "little", signed=True)
    assert ulaw_to_pcm16(b"\x00") == (-32124).to_bytes(2, "little", signed=True)
    assert alaw_to_pcm16(b"\xd5") == (8).to_bytes(2, "little", signed=True)
    assert alaw_to_pcm16(b"\x2a") == (-32256).to_bytes(2, "little", signed=True)


def test_odd_pcm_length_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="even number of bytes"):
        pcm16_to_ulaw(b"\x00\x01\x02")
    with pytest.raises(AudioError):
        pcm16_to_alaw(b"\x00")


def test_empty_input() -> None:
    assert pcm16_to_ulaw(b"") == b""
    assert ulaw_to_pcm16(b"") == b""


def test_numpy_fallback_matches_audioop_too() -> None:
    ref = _audioop()
    assert g711.numpy_pcm16_to_ulaw(ALL_PCM16) == ref.lin2ulaw(ALL_PCM16, 2)
    assert g711.numpy_pcm16_to_alaw(ALL_PCM16) == ref.lin2alaw(ALL_PCM16, 2)
    assert g711.numpy_ulaw_to_pcm16(ALL_CODES) == ref.ulaw2lin(ALL_CODES, 2)
    assert g711.numpy_alaw_to_pcm16(ALL_CODES) == ref.alaw2lin(ALL_CODES, 2)
    with pytest.raises(AudioError):
        g711.numpy_pcm16_to_ulaw(b"\x00")


def test_the_c_accelerator_is_built_here() -> None:
    # setup.py builds it wherever a C compiler exists (this machine kind, CI); without one the
    # package still installs and the numpy path above serves.
    assert g711.ACCELERATED
