"""Whose fault a playout stall is: the load tool's own lateness, or the server's path.

Theory of operation
-------------------
A stall is heard when the echo of some frame ``k`` arrives long after the audio before it has
played. Its arrival time is ``due(k) + send_lag(k) + round_trip(k)``: when the caller meant to
send it, how late the caller actually sent it, and the way through the server and the provider
and back. The load tool shares its core with the provider emulator, so it can be late itself
(issue #22 item 7): a stall is the **caller's** when

* the frame that ended the gap was itself sent at least half the gap late (the sender's loop
  was late, so its echo was too), or
* the load tool's own event loop was paused for at least half the gap in the gap's span (the
  echo may have been on time but was read late; :class:`LoopPauses` samples the loop),

and the **server's** (the gateway, or the provider emulator it talks to) otherwise: the frame
left on time and the caller's loop was running, yet the audio came back late.

:class:`LoopPauses` is a task that sleeps :data:`PROBE_S` at a time and records each wakeup
that came late by more than :data:`PAUSE_MIN_MS` as a pause ``(start, length)`` in loop time.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from dataclasses import dataclass

__all__ = ["PAUSE_MIN_MS", "PROBE_S", "LoopPauses", "Stall", "blame"]

#: How often the load tool's loop is probed (s).
PROBE_S = 0.005
#: A late wakeup shorter than this (ms) is not recorded as a pause.
PAUSE_MIN_MS = 10.0


@dataclass(frozen=True, slots=True)
class Stall:
    """One playout stall as the simulated caller heard it (times: loop seconds, ms)."""

    at: float  # when the audio that ended the gap arrived
    gap_ms: float
    send_lag_ms: float  # how late the caller sent the frame that ended the gap
    rtt_ms: float  # that frame's round trip


class LoopPauses:
    """The load tool's own event-loop pauses while it runs (see module docstring)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.lengths_ms: list[float] = []
        self.max_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start probing on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._probe())

    async def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + PROBE_S
            await asyncio.sleep(PROBE_S)
            late_ms = (loop.time() - due) * 1000.0
            if late_ms > self.max_ms:
                self.max_ms = late_ms
            if late_ms >= PAUSE_MIN_MS:
                self.starts.append(due)
                self.lengths_ms.append(late_ms)

    def longest_within(self, start: float, end: float) -> float:
        """The longest pause (ms) overlapping ``[start, end]`` (loop seconds), 0 if none."""
        i = bisect.bisect_left(self.starts, start - 10.0)  # no pause is longer than 10 s
        longest = 0.0
        for s, length in zip(self.starts[i:], self.lengths_ms[i:], strict=True):
            if s > end:
                break
            if s + length / 1000.0 >= start:
                longest = max(longest, length)
        return longest


def blame(stall: Stall, pauses: LoopPauses) -> str:
    """``"caller"`` when the load tool was late for this stall, else ``"server"``."""
    half = stall.gap_ms / 2.0
    if stall.send_lag_ms >= half:
        return "caller"
    gap_start = stall.at - stall.gap_ms / 1000.0
    if pauses.longest_within(gap_start, stall.at) >= half:
        return "caller"
    return "server"
