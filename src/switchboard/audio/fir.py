"""Low-latency streaming resampling for small rational ratios (8k↔16k, 8k↔24k, 16k↔24k…):
a polyphase FIR.

Why: soxr's ``HQ`` stream releases output in blocks (8k→24k: 1468 samples every third 20 ms
chunk), so each direction of a call holds ~60 ms and emits bursts; a call resampled both ways
gained ~120 ms of round trip (docs/benchmarks.md, "Capacity"). Telephony rates are small
ratios of the provider rates (8k→24k is 3/1, a wideband 16k leg to 24k is 3/2), where a plain
polyphase FIR has a fixed, small delay.

Theory of operation
-------------------
One Kaiser-windowed sinc low-pass ``h`` (cut-off halfway between the lower rate's 0.85·Nyquist
and its Nyquist; ~80 dB stop band) at ``L`` times the input rate, for a ratio ``L/M`` in lowest
terms. Output ``n`` sits at ``v = n·M`` on that grid: it is ``L · Σ_k h[k·L + p] · x[i − k]``
with ``i = v // L`` and phase ``p = v % L`` (up by L: every phase of every input; down by M:
phase 0 of every M-th input). The input history the filter needs, and where the grid stands
(``pos``), are kept between calls, so chunking never changes the output.
The filter's group delay (``D`` output samples, about 4 ms) is compensated the way soxr does
it: the first ``D`` outputs are dropped and ``flush`` feeds zeros to release the last ``D``,
so a second in gives a second out, aligned with the input.

Aligned output costs latency on a live stream cut into 20 ms pieces: output sample ``t`` needs
input up to ``t + D``, so the last ``D`` samples of each piece wait for the next piece, and a
20 ms carrier frame made of them is complete one whole piece (20 ms) later, not ``D`` later.
A call's two directions (``aligned=False``, what the bridge uses) keep the ``D`` outputs instead:
each piece gives its output at once and the audio is late by the filter's own delay only (one
call through both directions of the PCM path: 20 ms of round trip → ~1 ms plus the two filters'
``D``, see docs/benchmarks.md, "Capacity"). ``flush`` still releases the last ``D``. Aligned
output needs ``D`` to be a whole number of output samples, so ratios that are not integers
(16k↔24k) run unaligned only.

The filter runs in C (``_fir.c``, built by setup.py where a compiler exists) or, without it, in
numpy: the same float64 products of the same coefficients and samples, summed in another
order and rounded half-to-even, so the two agree to the bit unless a sum lies within ~1e-11
of a half (tests compare them). In C one 20 ms piece costs a few µs; numpy's ~12 calls per
piece cost several times that, on every call of the PCM path, both ways.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from switchboard.audio.resample import check_rate
from switchboard.errors import AudioError

_fir: ModuleType | None
try:
    from switchboard.audio import _fir
except ImportError:  # no compiler where the package was built: numpy computes the same
    _fir = None

__all__ = ["FirResampler", "fir_ratio", "integer_ratio"]

_TAPS_PER_PHASE = 66  # of the lower rate: 199 taps at 24 kHz for 8k↔24k (~600 Hz transition)
_MAX_FACTOR = 6  # L or M: 8k↔48k at most; 44.1k↔48k (147/160) is soxr's


def integer_ratio(in_rate: int, out_rate: int) -> tuple[int, int] | None:
    """``(L, 1)`` or ``(1, M)`` when one rate is an integer multiple of the other, else None."""
    if out_rate % in_rate == 0:
        return out_rate // in_rate, 1
    if in_rate % out_rate == 0:
        return 1, in_rate // out_rate
    return None


def fir_ratio(in_rate: int, out_rate: int, *, aligned: bool = False) -> tuple[int, int] | None:
    """``(L, M)`` in lowest terms when :class:`FirResampler` takes ``in_rate → out_rate``
    (``aligned``: integer ratios only), else None."""
    if in_rate == out_rate or in_rate <= 0 or out_rate <= 0:
        return None
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    if max(up, down) > _MAX_FACTOR or (aligned and min(up, down) > 1):
        return None
    return up, down


def _design(factor: int) -> np.ndarray:
    n = _TAPS_PER_PHASE * factor + 1  # group delay (n-1)/2: a whole number of low-rate samples
    cutoff = (0.85 + 1.0) / 2 / factor / 2  # cycles per sample at the higher rate
    t = np.arange(n) - (n - 1) / 2
    h: np.ndarray = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(n, 8.0)
    normalised: np.ndarray = h / h.sum()
    return normalised


class FirResampler:
    """One direction of one call, PCM16 at ``in_rate`` → PCM16 at ``out_rate`` (see
    :func:`fir_ratio`).

    Same interface as :class:`~switchboard.audio.resample.Resampler`. ``compiled=False`` runs
    the numpy path even where the C one is built (tests compare them); ``True`` requires C.

    Raises:
        AudioError: unsupported rates, or a ratio the FIR does not take (:func:`fir_ratio`).
    """

    __slots__ = (
        "_aligned",
        "_coef",
        "_delay",
        "_down",
        "_drop",
        "_fed",
        "_hist",
        "_phases",
        "_pos",
        "_taps",
        "_up",
        "in_rate",
        "out_rate",
    )

    def __init__(
        self, in_rate: int, out_rate: int, *, aligned: bool = True, compiled: bool | None = None
    ) -> None:
        self.in_rate = check_rate(in_rate)
        self.out_rate = check_rate(out_rate)
        ratio = fir_ratio(in_rate, out_rate, aligned=aligned)
        if ratio is None:
            what = "an integer" if aligned else "a small rational"
            raise AudioError(f"{in_rate} → {out_rate} Hz is not {what} resampling ratio")
        self._up, self._down = ratio
        factor = max(ratio)
        h = _design(factor)
        self._delay = (len(h) - 1) // 2  # in samples of the L-times-denser grid
        per = -(-len(h) // self._up)
        padded = np.zeros(per * self._up)
        padded[: len(h)] = h * self._up
        self._phases = [padded[p :: self._up] for p in range(self._up)]  # h[k·L + p]
        self._taps = per
        if compiled and _fir is None:
            raise AudioError("the compiled FIR (switchboard.audio._fir) is not built here")
        #: the C path's coefficients: each phase reversed (a dot product per output), in a row
        self._coef = (
            np.concatenate([phase[::-1] for phase in self._phases]).astype("<f8").tobytes()
            if _fir is not None and compiled is not False
            else None
        )
        self._aligned = aligned
        self._hist: np.ndarray | bytearray = self._empty_history()
        self._drop = self._delay // self._down if aligned else 0
        self._pos = 0  # where the next output sits on the grid, from the next input
        self._fed = False  # input since the start or the last flush/reset

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        """Resample one piece; ``last=True`` flushes the filter's delay (see :meth:`flush`)."""
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
        self._fed = self._fed or len(pcm) > 0
        out = self._run(pcm)
        if last:
            # No input since the last flush/reset: nothing is held, no tail. (Unaligned, the
            # zeros fed to release the delay would come out as ~4 ms of silence, which the
            # bridge framed into a frame of "agent audio" at the end of every turn, even one
            # with no audio: a reply of its own, which cancelled a false interruption's resume.)
            if self._fed:
                out += self._run(bytes(2 * self._tail_inputs()))
            self.reset()
        return out

    def flush(self) -> bytes:
        """Return the delayed tail (the filter fed with silence) and start afresh; ``b""`` when
        nothing came in since the start or the last flush/reset."""
        return self.process(b"", last=True)

    def reset(self) -> None:
        """Forget filter state (after a barge-in clears the audio in flight)."""
        self._hist = self._empty_history()
        self._drop = self._delay // self._down if self._aligned else 0
        self._pos = 0
        self._fed = False

    @property
    def compiled(self) -> bool:
        """Whether the filter runs in C."""
        return self._coef is not None

    @property
    def delay_ms(self) -> float:
        """The filter's own delay (what ``aligned=False`` output lags its input by)."""
        return self._delay / (self.in_rate * self._up) * 1000.0

    # -- internals ---------------------------------------------------------------------------
    def _tail_inputs(self) -> int:
        return -(-self._delay // self._up)

    def _empty_history(self) -> np.ndarray | bytearray:
        if self._coef is not None:
            return bytearray(2 * (self._taps - 1))  # PCM16, as the input came
        return np.zeros(self._taps - 1)

    def _run(self, pcm: bytes) -> bytes:
        out: bytes
        if self._coef is not None:
            assert _fir is not None and isinstance(self._hist, bytearray)
            out, self._pos = _fir.polyphase(
                pcm, self._hist, self._coef, self._up, self._down, self._pos
            )
        else:
            out = self._run_numpy(pcm)
        if self._drop:
            cut = min(self._drop, len(out) // 2)
            self._drop -= cut
            out = out[2 * cut :]
        return out

    def _run_numpy(self, pcm: bytes) -> bytes:
        assert isinstance(self._hist, np.ndarray)
        n = len(pcm) // 2
        buf = np.concatenate([self._hist, np.frombuffer(pcm, dtype="<i2")])
        self._hist = buf[len(buf) - (self._taps - 1) :]
        up, down, pos = self._up, self._down, self._pos
        outs = max(0, -(-(n * up - pos) // down))
        self._pos = pos + outs * down - n * up
        if not outs:
            return b""
        v = pos + down * np.arange(outs)  # each output's place on the grid (see _fir.c)
        # np.convolve (a C loop per output, no BLAS threads): ~2.5x cheaper than a matmul of
        # sliding windows at these sizes, and the same arithmetic whatever the chunking
        if up == 1:  # down by M: the outputs kept, one phase
            out = np.convolve(buf, self._phases[0], "valid")[v]
        else:
            every = np.stack([np.convolve(buf, phase, "valid") for phase in self._phases])
            out = every[v % up, v // up]
        return _to_pcm16(out)


def _to_pcm16(out: np.ndarray) -> bytes:
    np.rint(out, out=out)
    np.clip(out, -32768, 32767, out=out)
    return bytes(out.astype("<i2").tobytes())
