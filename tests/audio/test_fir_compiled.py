"""The FIR resampler in C (``_fir.c``) and in numpy give the same samples, bit for bit.

Both sum the same float64 products and round half-to-even; they may differ only where a sum
lies within ~1e-11 of a half, which none of these signals (voice, noise, a full-scale square
wave that clips, silence) reach.
"""

from __future__ import annotations

import numpy as np
import pytest

from switchboard.audio import fir
from switchboard.audio.fir import FirResampler
from switchboard.errors import AudioError
from tests.audio.signals import voice

INTEGER = [
    (8000, 24000),
    (24000, 8000),
    (8000, 16000),
    (16000, 8000),
    (16000, 48000),
    (48000, 8000),
]
#: every ratio both ways unaligned (what calls use); aligned only where the ratio is an integer
CASES = [(a, b, False) for a, b in [*INTEGER, (16000, 24000), (24000, 16000)]] + [
    (a, b, True) for a, b in INTEGER
]


def _signal(rate: int) -> bytes:
    rng = np.random.default_rng(rate)
    speech = voice(rate, 1.0).astype(np.int32)
    noise = rng.integers(-32768, 32768, rate // 2)
    square = np.where(np.arange(rate // 4) // (rate // 400) % 2, 32767, -32768)  # clips
    quiet = np.zeros(rate // 10, np.int32)
    return np.concatenate([speech, noise, square, quiet]).astype("<i2").tobytes()


def _run(r: FirResampler, pcm: bytes, piece_samples: list[int]) -> bytes:
    out, i, k = [], 0, 0
    while i < len(pcm):
        step = 2 * piece_samples[k % len(piece_samples)]
        out.append(r.process(pcm[i : i + step]))
        i, k = i + step, k + 1
    out.append(r.flush())
    return b"".join(out)


@pytest.mark.skipif(fir._fir is None, reason="the C accelerator is not built here")
@pytest.mark.parametrize(("src", "dst", "aligned"), CASES)
def test_c_and_numpy_give_the_same_samples(src: int, dst: int, aligned: bool) -> None:
    pcm = _signal(src)
    # 20 ms pieces, then odd sizes: a piece shorter than the filter, one sample, none
    for pieces in ([src // 50], [7, 1, 0, 333, src // 25]):
        c = FirResampler(src, dst, aligned=aligned, compiled=True)
        py = FirResampler(src, dst, aligned=aligned, compiled=False)
        assert c.compiled and not py.compiled
        a, b = _run(c, pcm, pieces), _run(py, pcm, pieces)
        assert len(a) == len(b) and a == b
        # and again after a reset mid-stream (a barge-in), on the same objects
        for r in (c, py):
            r.process(pcm[:1000])
            r.reset()
        assert _run(c, pcm, pieces) == _run(py, pcm, pieces)


def test_the_c_accelerator_is_built_here() -> None:
    # setup.py builds it wherever a C compiler exists (this machine kind, CI)
    assert FirResampler(8000, 24000).compiled


def test_asking_for_c_where_it_is_not_built_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fir, "_fir", None)
    with pytest.raises(AudioError, match="not built"):
        FirResampler(8000, 24000, compiled=True)
    assert not FirResampler(8000, 24000).compiled  # the default falls back to numpy
