"""The simulated caller's loudspeaker: a playout clock over the audio the server sends (pure).

Theory of operation: audio received from the server is queued. Every 20 ms :meth:`Playout.tick`
plays one frame (160 μ-law bytes): queued audio when there is some, silence otherwise, and appends
it to the timeline, so the recording is faithful in time. A ``mark`` is remembered at the byte
position of everything received before it and acknowledged by the tick that plays past that
position (immediately when nothing is queued). ``clear`` drops the queue and acknowledges every
pending mark at once, as Twilio does.
"""

from __future__ import annotations

from collections import deque

__all__ = ["FRAME_BYTES", "Playout"]

FRAME_BYTES = 160  # 20 ms of μ-law 8 kHz
_SILENCE = b"\xff" * FRAME_BYTES


class Playout:
    """Playout state of one stream (see module docstring)."""

    def __init__(self) -> None:
        self._queue = bytearray()
        self._received = 0  # bytes ever queued
        self._consumed = 0  # bytes played or dropped
        self._marks: deque[tuple[int, str]] = deque()
        self.timeline = bytearray()  # μ-law, one frame per tick
        self.heard_bytes = 0  # bytes of received audio played
        self.dropped_bytes = 0
        self.ticks = 0
        self.last_sound_tick = -1  # last tick that played something other than digital silence

    @property
    def queued(self) -> int:
        """Bytes waiting to be played."""
        return len(self._queue)

    @property
    def pending_marks(self) -> int:
        return len(self._marks)

    def add_audio(self, payload: bytes) -> None:
        self._queue += payload
        self._received += len(payload)

    def add_mark(self, name: str) -> list[str]:
        """Queue a mark; returns it at once when all audio before it has already played."""
        if self._consumed >= self._received:
            return [name]
        self._marks.append((self._received, name))
        return []

    def clear(self) -> list[str]:
        """Drop queued audio; returns every pending mark (all acknowledged now)."""
        self.dropped_bytes += len(self._queue)
        self._consumed = self._received
        self._queue.clear()
        acked = [name for _, name in self._marks]
        self._marks.clear()
        return acked

    def tick(self) -> list[str]:
        """Play one 20 ms frame; returns the marks whose audio has now finished."""
        take = min(FRAME_BYTES, len(self._queue))
        frame = bytes(self._queue[:take])
        del self._queue[:take]
        self._consumed += take
        self.heard_bytes += take
        self.ticks += 1
        if frame.strip(b"\xff\x7f"):
            self.last_sound_tick = self.ticks
        self.timeline += frame + _SILENCE[: FRAME_BYTES - take]
        acked: list[str] = []
        while self._marks and self._marks[0][0] <= self._consumed:
            acked.append(self._marks.popleft()[1])
        return acked
