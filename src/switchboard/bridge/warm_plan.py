"""Warm transfer decisions (pure): when to brief, when to join, when to give the caller back.

A warm transfer puts the caller on hold, dials the destination on a new leg, has the agent
brief the person who answers, then joins caller and person and the agent leaves. Whoever
drives it (``bridge/warm_transfer.py``) reports what the new leg does; :class:`WarmPlan`
answers with the next :class:`WarmStep`.

Theory of operation: the plan starts ``ringing`` at ``started_ms``. Leg reports
(:meth:`WarmPlan.leg`) carry the carrier's status mapped to one of ``ringing``,
``detecting`` (answered; the answering-machine detection has not said who yet),
``answered`` with who answered (``human``, ``machine``, ``fax``, ``unknown`` — the
carriers' detection results by name), or ``ended``. Once answered the ring deadline no
longer applies; a detection that says nothing within ``detect_ms`` counts as a person. A
person (or ``unknown``/``not_sure``: detection that could not tell is treated as a person, as
on outbound calls) is ``Brief``-ed once. The join waits for the carrier to say the briefing
has played to its end (:meth:`WarmPlan.briefed`: Twilio's ``announcement-end``, Telnyx's
``call.playback.ended``), not for a timer of its length: then the plan says ``Join``
(``joined_by`` ``carrier``). Only when no such word comes by the briefing's length plus
``play_slack_ms`` after it was sent (:meth:`WarmPlan.briefing_sent`, then :meth:`WarmPlan.tick`)
is the person joined all the same (``joined_by`` ``timeout``): they answered, and the caller
should not wait on a lost event. A machine or fax, a leg that ended before
the join, or no answer by ``ring_ms`` (:meth:`WarmPlan.tick`) gives ``GiveUp`` with the
reason; ``GiveUp`` and ``Join`` are final. Nothing here sees a clock or a socket: the times
come in as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from switchboard.telephony.warm import LegStatus

__all__ = [
    "Brief",
    "GiveUp",
    "Join",
    "LegStatus",
    "WarmPlan",
    "WarmStep",
    "briefing_text",
    "failure_message",
]

#: Why a warm transfer gave the caller back to the agent.
GiveUpReason = Literal["no_answer", "voicemail", "ended", "failed"]

_HUMAN = frozenset({"human", "human_residence", "human_business", "unknown", "not_sure", ""})


@dataclass(frozen=True, slots=True)
class Brief:
    """A person answered: speak the briefing to them."""


@dataclass(frozen=True, slots=True)
class Join:
    """The person has been briefed: join caller and person; the agent leaves."""


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Hang up the new leg (if it is still up) and give the caller back to the agent."""

    reason: GiveUpReason


WarmStep = Brief | Join | GiveUp


class WarmPlan:
    """One warm transfer's state (see the module docstring).

    Args:
        started_ms: when the destination was dialled (the driver's clock, ms).
        ring_ms: how long the destination may ring before the caller is given back.
        detect_ms: how long an answered leg's detection may take before it counts as a
            person.
    """

    def __init__(
        self,
        *,
        started_ms: float,
        ring_ms: float,
        detect_ms: float = 5000.0,
        play_slack_ms: float = 10_000.0,
    ) -> None:
        self.deadline_ms = started_ms + ring_ms
        self.detect_ms = detect_ms
        self.detect_deadline_ms: float | None = None
        self.play_slack_ms = play_slack_ms
        #: when the person is joined even without the carrier's end of the briefing
        self.play_deadline_ms: float | None = None
        #: what let the join happen: the carrier's end of playback, or the backstop
        self.joined_by: Literal["carrier", "timeout"] | None = None
        self.state: Literal["ringing", "detecting", "briefing", "joined", "given_up"] = "ringing"
        self.reason: GiveUpReason | None = None

    @property
    def done(self) -> bool:
        return self.state in ("joined", "given_up")

    def leg(
        self, status: LegStatus, answered_by: str | None = None, *, now_ms: float = 0.0
    ) -> WarmStep | None:
        """What the new leg did (reported at ``now_ms``); the step it calls for (None: keep
        waiting)."""
        if self.done:
            return None
        if status == "ended":
            return self._give_up("no_answer" if self.state == "ringing" else "ended")
        if status == "detecting" and self.state == "ringing":
            self.state, self.detect_deadline_ms = "detecting", now_ms + self.detect_ms
            return None
        if status == "answered" and self.state in ("ringing", "detecting"):
            who = (answered_by or "").lower()
            if who in _HUMAN:
                self.state = "briefing"
                return Brief()
            return self._give_up("voicemail")
        return None

    def tick(self, now_ms: float) -> WarmStep | None:
        """Time passed: no answer by the deadline gives the caller back; a detection that
        said nothing in time counts as a person."""
        if self.state == "ringing" and now_ms >= self.deadline_ms:
            return self._give_up("no_answer")
        detecting = self.state == "detecting" and self.detect_deadline_ms is not None
        if detecting and now_ms >= (self.detect_deadline_ms or 0.0):
            self.state = "briefing"
            return Brief()
        playing = self.state == "briefing" and self.play_deadline_ms is not None
        if playing and now_ms >= (self.play_deadline_ms or 0.0):
            return self._join("timeout")
        return None

    def briefing_sent(self, now_ms: float, length_ms: float) -> None:
        """The carrier was asked at ``now_ms`` to play a briefing of ``length_ms``."""
        if self.state == "briefing":
            self.play_deadline_ms = now_ms + length_ms + self.play_slack_ms

    def briefed(self) -> WarmStep | None:
        """The carrier says the briefing has played to its end: join person and caller."""
        return self._join("carrier") if self.state == "briefing" else None

    def _join(self, by: Literal["carrier", "timeout"]) -> Join:
        self.state, self.joined_by = "joined", by
        return Join()

    def failed(self) -> WarmStep | None:
        """The carrier refused a step (dial, briefing, join): give the caller back."""
        return None if self.done else self._give_up("failed")

    def _give_up(self, reason: GiveUpReason) -> GiveUp:
        self.state, self.reason = "given_up", reason
        return GiveUp(reason)


_WHY = {
    "no_answer": "nobody answered",
    "voicemail": "it went to voicemail",
    "ended": "the line dropped before you were connected",
    "failed": "the call could not be placed",
}


def failure_message(reason: GiveUpReason, destination: str) -> str:
    """What the agent is told when the caller comes back to it (it tells the caller)."""
    return (
        f"The warm transfer to {destination} did not go through: {_WHY[reason]}. "
        "The caller is back on the line with you: tell them, and offer to help another way."
    )


def briefing_text(
    transcript: Sequence[tuple[str, str]],
    *,
    summary: str | None = None,
    agent: str | None = None,
    max_chars: int = 400,
) -> str:
    """The short spoken summary the person who answers hears before the caller joins.

    ``summary`` (the model's own, from ``transfer_call``) wins; otherwise the caller's last
    lines from ``transcript`` (``(role, text)`` pairs) are quoted, newest last, within
    ``max_chars``.
    """
    who = f"the {agent} assistant" if agent else "the virtual assistant"
    opening = f"Hello, this is {who} with a caller for you."
    closing = "I am connecting you now."
    if summary and summary.strip():
        body = summary.strip()[:max_chars]
        return f"{opening} {body.rstrip('.')}. {closing}"
    said = [text.strip() for role, text in transcript if role in ("caller", "user") and text]
    picked: list[str] = []
    room = max_chars
    for line in reversed(said):
        if len(line) + 2 > room:
            break
        picked.insert(0, line)
        room -= len(line) + 2
    if not picked:
        return f"{opening} {closing}"
    quoted = "; ".join(line.rstrip(".") for line in picked)
    return f"{opening} The caller said: {quoted}. {closing}"
