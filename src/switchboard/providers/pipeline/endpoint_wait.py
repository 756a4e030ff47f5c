"""The wait of a caller turn that sounds unfinished, timed in caller audio (pure).

A turn whose words sound unfinished (:func:`.endpointing.utterance_complete`: "my order number
is four five") is held up to ``max_endpoint_ms`` for more speech before it is answered
(``turns.py``). :class:`EndpointWait` times that pause on the *caller-audio clock*: the
milliseconds of caller audio fed to the recogniser, the timeline its result times are on. The
wait runs from the end of the held speech (the final result's ``end_ms``) to ``max_endpoint_ms``
of caller audio later, whenever that audio arrives.

Why not the wall clock: on a loaded machine the caller's audio and the recogniser's events
arrive bunched. A stall after the fragment's final let a wall-clock wait run out before the
caller's "seven two nine" had even been received (half a sentence answered), and a burst fit
seconds of the caller's audio into the wait: the next sentence's speech start came in before
the timer and the turns ran into each other.

When the audio clock passes the deadline the engine is asked (``WaitEndpoint``) to judge a
``grace_s`` of wall time later: the recogniser reports speech a moment after its audio was
sent (and in a burst, many frames go out before any result comes back), so a start of speech
just before the deadline is heard of before the turn is answered. ``max_endpoint_ms`` plus
``backstop_s`` of wall time after the wait began, the turn is judged even if no caller audio
came: carriers send audio all the time, silence too, so this only keeps a held turn from
waiting forever if the audio stops; it is long because a loaded machine stalls for seconds
(4 s seen in the e2e under load) and a stall must not end the wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from switchboard.providers.pipeline.actions import WaitEndpoint

__all__ = ["EndpointWait"]


@dataclass(slots=True)
class EndpointWait:
    """One call's end-of-turn wait (see the module docstring).

    Attributes:
        max_ms: the longest pause, in caller audio, that a held turn waits for (0: never).
        grace_s: wall time between the audio clock passing the deadline and the judgement.
        backstop_s: wall time after ``max_ms`` at which a held turn is judged without audio.
        audio_ms: caller audio fed to the recogniser so far (the clock).
        until_ms: while a turn is held, the deadline on the audio clock.
        went_on: the caller started speaking again during the wait.
    """

    max_ms: float = 0.0
    grace_s: float = 0.25
    backstop_s: float = 10.0
    audio_ms: float = 0.0
    until_ms: float | None = None
    went_on: bool = False
    _backstop_at: float = math.inf
    _signalled: bool = False

    @property
    def holding(self) -> bool:
        return self.until_ms is not None

    @property
    def over(self) -> bool:
        """The held turn's pause reached ``max_ms`` of caller audio."""
        return self.until_ms is not None and self.audio_ms >= self.until_ms

    def on_audio(self, ms: float, now: float) -> WaitEndpoint | None:
        """``ms`` more caller audio went to the recogniser; a ``WaitEndpoint`` to judge the
        held turn when this passes its deadline (once per wait)."""
        self.audio_ms += ms
        if self.over and not self._signalled:
            self._signalled = True
            return WaitEndpoint(now + self.grace_s)
        return None

    def hold(self, end_ms: int | None, now: float) -> WaitEndpoint | None:
        """Hold a turn whose speech ended at ``end_ms`` (call time; ``None``: now), or keep
        holding it (the deadline stays that of the first held speech: ``max_ms`` in all).
        Returns the backstop to schedule, or ``None`` once the pause has run its length."""
        if self.until_ms is None:
            anchor = self.audio_ms if end_ms is None else float(end_ms)
            self.until_ms = anchor + self.max_ms
            self._backstop_at = now + self.max_ms / 1000.0 + self.backstop_s
            self._signalled = False
        self.went_on = False
        return None if self.over else WaitEndpoint(self._backstop_at)

    def speech_started(self) -> None:
        """The recogniser heard the caller start speaking."""
        if self.until_ms is not None:
            self.went_on = True

    def due(self, now: float) -> bool:
        """Whether the held turn's wait is over (on the audio clock, or by the backstop)."""
        return self.until_ms is not None and (self.over or now >= self._backstop_at)

    def clear(self) -> None:
        """The held turn ended (answered, or joined by more speech that ended it)."""
        self.until_ms, self.went_on = None, False
        self._backstop_at, self._signalled = math.inf, False
