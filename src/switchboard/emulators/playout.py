"""A simulated caller's loudspeaker (pure): the one playout model of the carrier emulators and
the load test.

Theory of operation
-------------------
:class:`PlayoutClock` is the model. It knows one instant, ``end``: when everything received so
far will have played. Audio arriving at ``now`` starts at ``max(now, end)`` and moves ``end`` on
by its duration; the silence before it (``now - end``, once audio has started) is what a caller
hears as a gap. A ``mark`` is due at ``end`` as it stands when the mark arrives — the moment the
audio sent before it has played — so it is due at once when nothing is queued. ``clear`` drops
what is queued (``end = now``) and makes every pending mark due now, as Twilio and Telnyx do.
Times are in whatever unit the caller counts in (seconds of loop time, bytes of audio); the
clock holds only a float and the pending marks, so it costs nothing per frame and never copies
audio. The load test (:class:`~switchboard.loadtest.client.MediaMeter`) uses it as is, on loop
time.

:class:`Playout` is the same clock driven by a 20 ms tick, counting in bytes, with the bytes
kept so that what was heard can be recorded: every :meth:`Playout.tick` plays one frame —
queued audio when there is some, silence otherwise — and appends it to ``timeline``, so the
recording is faithful in time. Audio received between ticks starts at the next tick (``now``
is the clock of the last tick), so the bytes queued are always exactly ``end - now``. The
Twilio and Telnyx emulators' callers play through it.
"""

from __future__ import annotations

from collections import deque

__all__ = ["FRAME_BYTES", "Playout", "PlayoutClock"]

FRAME_BYTES = 160  # 20 ms of G.711 (μ-law or A-law) at 8 kHz


class PlayoutClock:
    """When queued audio finishes playing, and which marks that makes due (see module doc)."""

    __slots__ = ("_marks", "end", "started")

    def __init__(self) -> None:
        self.end = 0.0  # when everything received so far will have played
        self.started = False  # whether any audio has arrived
        self._marks: deque[tuple[float, str]] = deque()  # (due, name), due never decreasing

    @property
    def pending_marks(self) -> int:
        """Marks whose audio has not played yet (or which are due but not taken)."""
        return len(self._marks)

    def add(self, duration: float, now: float) -> float | None:
        """Queue ``duration`` of audio arriving at ``now``.

        Returns:
            The gap of silence before it (``now - end``; negative while audio is still
            queued), or None for the first audio of the stream.
        """
        gap = now - self.end if self.started else None
        self.started = True
        self.end = max(now, self.end) + duration
        return gap

    def mark(self, name: str, now: float) -> None:
        """A mark arriving at ``now``: due once the audio queued before it has played."""
        self._marks.append((max(now, self.end), name))

    def clear(self, now: float) -> float:
        """Drop queued audio at ``now``; every pending mark becomes due. Returns what was cut."""
        dropped = max(0.0, self.end - now)
        self.end = now
        if self._marks:
            self._marks = deque((now, name) for _due, name in self._marks)
        return dropped

    def due(self, now: float) -> list[str]:
        """Take the marks due by ``now``, in the order they arrived."""
        marks = self._marks
        taken: list[str] = []
        while marks and marks[0][0] <= now:
            taken.append(marks.popleft()[1])
        return taken

    def next_due(self, now: float) -> str | None:
        """Take the first mark due by ``now``, if any (one at a time, for acks sent in turn)."""
        marks = self._marks
        if marks and marks[0][0] <= now:
            return marks.popleft()[1]
        return None


class Playout:
    """A :class:`PlayoutClock` on a frame tick that keeps and records the audio it plays.

    Args:
        frame_bytes: bytes played per tick (160: 20 ms of G.711 at 8 kHz).
        silence: the byte that fills a frame where nothing plays (``0xff``: μ-law silence;
            ``0x00`` for PCM16).
        quiet: bytes counting as digital silence for :attr:`last_sound_tick` (None: not
            tracked, skipping a scan per tick).

    Attributes:
        timeline: what was heard, one frame per tick, silence where nothing played.
        heard_bytes: bytes of received audio played; ``dropped_bytes``: dropped by ``clear``.
        ticks: frames played; ``last_played``: bytes of audio in the last one.
        last_sound_tick: the last tick that played something other than ``quiet`` (-1: none).
    """

    def __init__(
        self,
        *,
        frame_bytes: int = FRAME_BYTES,
        silence: bytes = b"\xff",
        quiet: bytes | None = b"\xff\x7f",
    ) -> None:
        self.clock = PlayoutClock()
        self._frame = frame_bytes
        self._silence = silence * frame_bytes
        self._quiet = quiet
        self._now = 0  # bytes of playout time: frame_bytes per tick
        self._queue = bytearray()
        self.timeline = bytearray()
        self.heard_bytes = 0
        self.dropped_bytes = 0
        self.ticks = 0
        self.last_played = 0
        self.last_sound_tick = -1

    @property
    def queued(self) -> int:
        """Bytes waiting to be played."""
        return len(self._queue)

    @property
    def pending_marks(self) -> int:
        return self.clock.pending_marks

    def add_audio(self, payload: bytes) -> None:
        self.clock.add(len(payload), self._now)
        self._queue += payload

    def add_mark(self, name: str) -> list[str]:
        """Queue a mark; returns it at once when all audio before it has already played."""
        self.clock.mark(name, self._now)
        return self.clock.due(self._now)

    def clear(self) -> list[str]:
        """Drop queued audio; returns every pending mark (all acknowledged now)."""
        self.dropped_bytes += len(self._queue)
        self._queue.clear()
        self.clock.clear(self._now)
        return self.clock.due(self._now)

    def play(self) -> int:
        """Play one frame into the timeline without taking due marks; returns audio bytes."""
        take = min(self._frame, len(self._queue))
        frame = bytes(self._queue[:take])
        del self._queue[:take]
        self._now += self._frame
        self.heard_bytes += take
        self.last_played = take
        self.ticks += 1
        if self._quiet is not None and frame.strip(self._quiet):
            self.last_sound_tick = self.ticks
        self.timeline += frame
        self.timeline += self._silence[: self._frame - take]
        return take

    def next_due(self) -> str | None:
        """Take the first mark whose audio has played, if any."""
        return self.clock.next_due(self._now)

    def tick(self) -> list[str]:
        """Play one frame; returns the marks whose audio has now finished."""
        self.play()
        return self.clock.due(self._now)
