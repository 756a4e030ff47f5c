"""A call's two channels on the call's clock (pure): what the caller said, what the caller heard.

Theory of operation
-------------------
The tape counts in samples from the start of the recording (``start_ms`` on the session's
clock). It holds only the samples not yet handed out for writing; :meth:`take` hands out what
can no longer change.

Left, the caller
    Caller frames are appended one after the other, as the carrier sent them in real time
    (the carrier's clock: a burst of frames read late, after our own stall, still belongs where
    the carrier put it). Only a frame that arrives more than ``_GAP_MS`` after the end of the
    channel (the carrier stopped sending for a while) is placed where it ends at its arrival,
    with silence before it. The first frame is never delayed so: the stream began at the start.

Time zero is the carrier's
    The tape starts when the session does, but the carrier's stream started a little earlier
    (our own setup took time). Caller frames carry the carrier's clock: 20 ms of audio each,
    sent in real time, delayed only by the network. A frame that arrives *earlier* than the
    tape's clock allows for the audio before it means the stream started earlier: the tape
    moves its zero back by that much (at most ``_MAX_SHIFT_MS``, before anything is written)
    and the agent audio already placed moves later with it, so both channels count from the
    carrier's start and agree with what the caller's end heard.

Right, what the caller heard
    The carrier plays what it is sent in order, starting each frame when the previous one has
    played or when it arrives, whichever is later (the same model as the bridge core's
    ``sent_until`` and the emulators' playout). A frame sent at ``now`` is therefore placed at
    ``max(now, end of the channel)``, silence filling the gap. A ``clear`` at ``now`` drops
    everything placed from ``now`` on: frames the carrier was holding were never heard.

Redaction
    :meth:`redact` silences a span of either or both channels. Samples are handed out for
    writing only ``holdback_ms`` behind ``now``, so a span reported up to that long after the
    fact (a keypad tone is reported once the key is released) is still silenced; an open span
    (no end yet) silences everything until :meth:`end_redaction`.

Memory is bounded by the hold-back plus the carrier's lead: the agent's audio is paced a few
hundred milliseconds ahead of playout, never a whole reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["HOLDBACK_MS", "Channel", "Tape"]

Channel = Literal["caller", "agent", "both"]

#: How far behind ``now`` samples are held back for a late redaction (and for the last frames
#: a ``clear`` can still remove).
HOLDBACK_MS = 2000.0
#: A caller frame arriving this much after the end of the left channel starts after silence
#: (a pause of the carrier's). Our own stalls are shorter, and must be: a frame read late after
#: a stall, then the burst the carrier queued meanwhile, belong back to back, not after a gap
#: (under load the test machine's loop stalls for over a second).
_GAP_MS = 2500.0
#: The furthest the tape's zero moves back to meet the carrier's (see "Time zero").
_MAX_SHIFT_MS = 1000.0


@dataclass(slots=True)
class _Span:
    start: int
    end: int | None  # None: until ``end_redaction``
    left: bool
    right: bool


class Tape:
    """The two channels of one call's recording, in samples at ``rate`` (see module doc)."""

    def __init__(self, rate: int, start_ms: float, *, holdback_ms: float = HOLDBACK_MS) -> None:
        self.rate = rate
        self.start_ms = start_ms
        self.holdback_ms = holdback_ms
        self.base = 0  # the first sample not yet handed out
        self._left = bytearray()  # samples from ``base`` on (PCM16 LE)
        self._right = bytearray()
        self._spans: list[_Span] = []
        self.clock_ms = start_ms  # the latest time seen
        self._shifted_ms = 0.0  # how far the zero has moved back to the carrier's

    # -- positions -------------------------------------------------------------------------------
    def sample_at(self, at_ms: float) -> int:
        """The sample index of time ``at_ms`` on the session's clock (never before the start)."""
        return max(0, round((at_ms - self.start_ms) * self.rate / 1000.0))

    @property
    def left_end(self) -> int:
        return self.base + len(self._left) // 2

    @property
    def right_end(self) -> int:
        return self.base + len(self._right) // 2

    def _see(self, now: float) -> None:
        self.clock_ms = max(self.clock_ms, now)

    # -- the two channels ------------------------------------------------------------------------
    def caller(self, pcm: bytes, now: float) -> None:
        """Caller audio (PCM16 at ``rate``) that reached us at ``now``."""
        self._see(now)
        count = len(pcm) // 2
        early_ms = (self.left_end + count - self.sample_at(now)) * 1000.0 / self.rate
        if early_ms > 0 and self.base == 0 and self._shifted_ms < _MAX_SHIFT_MS:
            self._shift(min(early_ms, _MAX_SHIFT_MS - self._shifted_ms))
        start = self.sample_at(now) - count
        started = self.left_end > 0
        if started and start - self.left_end > _GAP_MS * self.rate / 1000.0:
            self._left += bytes(2 * (start - self.left_end))
        self._left += pcm[: len(pcm) // 2 * 2]

    def _shift(self, ms: float) -> None:
        """Move the zero ``ms`` back: the agent audio placed so far plays that much later."""
        samples = round(ms * self.rate / 1000.0)
        if samples <= 0:
            return
        self.start_ms -= samples * 1000.0 / self.rate
        self._shifted_ms += samples * 1000.0 / self.rate
        if self._right:
            self._right[0:0] = bytes(2 * samples)
        for span in self._spans:
            span.start += samples
            if span.end is not None:
                span.end += samples

    def agent(self, pcm: bytes, now: float) -> None:
        """Agent audio (PCM16 at ``rate``) sent to the carrier at ``now``: plays after what is
        queued, or at once when the carrier ran dry."""
        self._see(now)
        at = self.sample_at(now)
        if at > self.right_end:
            self._right += bytes(2 * (at - self.right_end))
        self._right += pcm[: len(pcm) // 2 * 2]

    def clear(self, now: float) -> int:
        """The carrier dropped what it had not played at ``now``; returns the samples removed."""
        self._see(now)
        cut = max(self.sample_at(now), self.base)
        removed = max(0, self.right_end - cut)
        if removed:
            del self._right[2 * (cut - self.base) :]
        return removed

    def redact(self, start_ms: float, end_ms: float | None, channel: Channel = "both") -> bool:
        """Silence ``channel`` from ``start_ms`` to ``end_ms`` (session clock; None: until
        :meth:`end_redaction`). Returns False when part of the span was already handed out
        (further back than the hold-back), which can then no longer be silenced."""
        start = self.sample_at(start_ms)
        end = None if end_ms is None else max(start, self.sample_at(end_ms))
        self._spans.append(_Span(start, end, channel != "agent", channel != "caller"))
        return start >= self.base

    def end_redaction(self, at_ms: float) -> None:
        """Close every open span at ``at_ms``."""
        at = self.sample_at(at_ms)
        for span in self._spans:
            if span.end is None:
                span.end = max(span.start, at)

    # -- handing out -----------------------------------------------------------------------------
    def take(self, now: float, *, final: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The samples that can no longer change at ``now`` (when ``final``: all of them, the
        call having ended at ``now``), as (left, right) int16 arrays of equal length, with the
        redactions applied."""
        self._see(now)
        if final:  # what was still queued at the carrier when the call ended was not heard
            self.clear(now)
            upto = max(self.left_end, self.sample_at(now))
        else:
            upto = self.sample_at(now - self.holdback_ms)
        count = upto - self.base
        if count <= 0:
            return np.zeros(0, "<i2"), np.zeros(0, "<i2")
        left = self._cut(self._left, count)
        right = self._cut(self._right, count)
        self._silence(left, right, self.base, upto)
        self.base = upto
        return left, right

    @staticmethod
    def _cut(buf: bytearray, count: int) -> np.ndarray:
        have = min(len(buf) // 2, count)
        out = np.zeros(count, "<i2")
        out[:have] = np.frombuffer(bytes(buf[: 2 * have]), "<i2")
        del buf[: 2 * have]
        return out

    def _silence(self, left: np.ndarray, right: np.ndarray, base: int, upto: int) -> None:
        kept: list[_Span] = []
        for span in self._spans:
            lo = max(span.start, base)
            hi = upto if span.end is None else min(span.end, upto)
            if hi > lo:
                if span.left:
                    left[lo - base : hi - base] = 0
                if span.right:
                    right[lo - base : hi - base] = 0
            if span.end is None or span.end > upto:
                kept.append(span)
        self._spans = kept
