"""Low-latency streaming resampling for integer ratios (8k↔16k, 8k↔24k, 16k↔48k…): polyphase FIR.

Why: soxr's ``HQ`` stream releases output in blocks (8k→24k: 1468 samples every third 20 ms
chunk), so each direction of a call holds ~60 ms and emits bursts; a call resampled both ways
gained ~120 ms of round trip (docs/benchmarks.md, "Capacity"). Telephony rates are integer
ratios of the provider rates, where a plain polyphase FIR has a fixed, small delay.

Theory of operation
-------------------
One Kaiser-windowed sinc low-pass ``h`` (cut-off halfway between the lower rate's 0.85·Nyquist
and its Nyquist; ~80 dB stop band) at the higher rate. Up by L: output sample ``n·L + p`` is
``L · Σ_k h[k·L + p] · x[n − k]``; down by M: output ``n`` is ``Σ_k h[k] · x[n·M − k]``. The
input history the filter needs is kept between calls, so chunking never changes the output.
The filter's group delay (``D`` output samples, about 4 ms) is compensated the way soxr does
it: the first ``D`` outputs are dropped and ``flush`` feeds zeros to release the last ``D``,
so a second in gives a second out, aligned with the input.

Aligned output costs latency on a live stream cut into 20 ms pieces: output sample ``t`` needs
input up to ``t + D``, so the last ``D`` samples of each piece wait for the next piece, and a
20 ms carrier frame made of them is complete one whole piece (20 ms) later, not ``D`` later.
A call's two directions (``aligned=False``, what the bridge uses) keep the ``D`` outputs instead:
each piece gives its output at once and the audio is late by the filter's own delay only (one
call through both directions of the PCM path: 20 ms of round trip → ~1 ms plus the two filters'
``D``, see docs/benchmarks.md, "Capacity"). ``flush`` still releases the last ``D``.
"""

from __future__ import annotations

import numpy as np

from switchboard.audio.resample import check_rate
from switchboard.errors import AudioError

__all__ = ["FirResampler", "integer_ratio"]

_TAPS_PER_PHASE = 66  # of the lower rate: 199 taps at 24 kHz for 8k↔24k (~600 Hz transition)


def integer_ratio(in_rate: int, out_rate: int) -> tuple[int, int] | None:
    """``(L, 1)`` or ``(1, M)`` when one rate is an integer multiple of the other, else None."""
    if out_rate % in_rate == 0:
        return out_rate // in_rate, 1
    if in_rate % out_rate == 0:
        return 1, in_rate // out_rate
    return None


def _design(factor: int) -> np.ndarray:
    n = _TAPS_PER_PHASE * factor + 1  # group delay (n-1)/2: a whole number of low-rate samples
    cutoff = (0.85 + 1.0) / 2 / factor / 2  # cycles per sample at the higher rate
    t = np.arange(n) - (n - 1) / 2
    h: np.ndarray = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(n, 8.0)
    normalised: np.ndarray = h / h.sum()
    return normalised


class FirResampler:
    """One direction of one call, PCM16 at ``in_rate`` → PCM16 at ``out_rate`` (integer ratio).

    Same interface as :class:`~switchboard.audio.resample.Resampler`.

    Raises:
        AudioError: unsupported rates, or rates that are not an integer ratio.
    """

    __slots__ = (
        "_aligned",
        "_consumed",
        "_delay",
        "_down",
        "_drop",
        "_fed",
        "_hist",
        "_phases",
        "_taps",
        "_up",
        "in_rate",
        "out_rate",
    )

    def __init__(self, in_rate: int, out_rate: int, *, aligned: bool = True) -> None:
        self.in_rate = check_rate(in_rate)
        self.out_rate = check_rate(out_rate)
        ratio = integer_ratio(in_rate, out_rate)
        if ratio is None or in_rate == out_rate:
            raise AudioError(f"{in_rate} → {out_rate} Hz is not an integer resampling ratio")
        self._up, self._down = ratio
        factor = max(ratio)
        h = _design(factor)
        self._delay = (len(h) - 1) // 2  # in samples of the higher rate
        if self._up > 1:
            per = -(-len(h) // factor)
            padded = np.zeros(per * factor)
            padded[: len(h)] = h * factor
            # h[k·L + p]; float32: np.convolve is ~30 % cheaper than in float64, and 24 bits
            # of mantissa are far beyond the 16-bit samples and the filter's 88 dB
            self._phases = [padded[p::factor].astype(np.float32) for p in range(factor)]
            self._taps = per
        else:
            self._phases = [h.astype(np.float32)]
            self._taps = len(h)
        self._aligned = aligned
        self._hist = np.zeros(self._taps - 1, np.float32)
        self._drop = self._delay // self._down if aligned else 0
        self._consumed = 0
        self._fed = False  # input since the start or the last flush/reset

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        """Resample one piece; ``last=True`` flushes the filter's delay (see :meth:`flush`)."""
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        self._fed = self._fed or x.size > 0
        out = self._run(x)
        if last:
            # No input since the last flush/reset: nothing is held, no tail. (Unaligned, the
            # zeros fed to release the delay would come out as ~4 ms of silence, which the
            # bridge framed into a frame of "agent audio" at the end of every turn, even one
            # with no audio: a reply of its own, which cancelled a false interruption's resume.)
            if self._fed:
                out = np.concatenate([out, self._run(np.zeros(self._tail_inputs(), np.float32))])
            self.reset()
        return _to_pcm16(out)

    def flush(self) -> bytes:
        """Return the delayed tail (the filter fed with silence) and start afresh; ``b""`` when
        nothing came in since the start or the last flush/reset."""
        return self.process(b"", last=True)

    def reset(self) -> None:
        """Forget filter state (after a barge-in clears the audio in flight)."""
        self._hist = np.zeros(self._taps - 1, np.float32)
        self._drop = self._delay // self._down if self._aligned else 0
        self._consumed = 0
        self._fed = False

    @property
    def delay_ms(self) -> float:
        """The filter's own delay (what ``aligned=False`` output lags its input by)."""
        return self._delay / max(self.in_rate, self.out_rate) * 1000.0

    # -- internals ---------------------------------------------------------------------------
    def _tail_inputs(self) -> int:
        return self._delay // self._up

    def _run(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._hist, x])
        self._hist = buf[len(buf) - (self._taps - 1) :]
        if len(buf) < self._taps:
            return np.zeros(0, np.float32)
        # np.convolve (a C loop per output, no BLAS threads): ~2.5x cheaper than a matmul of
        # sliding windows at these sizes, and the same arithmetic whatever the chunking
        if self._up > 1:
            n = len(buf) - self._taps + 1
            out = np.empty(n * self._up, np.float32)
            for p, phase in enumerate(self._phases):
                out[p :: self._up] = np.convolve(buf, phase, "valid")
        else:
            # keep the decimation phase across chunks: outputs at input index ≡ 0 (mod M)
            full = np.convolve(buf, self._phases[0], "valid")
            out = full[self._phase_offset(len(full)) :: self._down]
        if self._drop:
            cut = min(self._drop, len(out))
            self._drop -= cut
            out = out[cut:]
        return out

    def _phase_offset(self, n: int) -> int:
        offset = (-self._consumed) % self._down
        self._consumed += n
        return offset


def _to_pcm16(out: np.ndarray) -> bytes:
    np.rint(out, out=out)
    np.clip(out, -32768, 32767, out=out)
    return bytes(out.astype("<i2").tobytes())
