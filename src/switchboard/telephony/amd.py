"""Answering-machine detection (AMD) for outbound calls: the carriers' verdicts, and what to do.

Theory of operation
-------------------
An outbound call placed with ``machine_detection`` asks the carrier to listen to whoever
answers: Twilio with ``MachineDetection=DetectMessageEnd`` and ``AsyncAmd=true`` (the media
stream connects at once; the verdict comes to ``AsyncAmdStatusCallback`` as ``AnsweredBy``,
twilio.com/docs/voice/answering-machine-detection), Telnyx with
``answering_machine_detection: premium`` (``call.machine.premium.detection.ended`` then, for a
machine, ``call.machine.premium.greeting.ended`` at the beep;
developers.telnyx.com/docs/voice/programmable-voice/answering-machine-detection).
:func:`twilio_verdict` and :func:`telnyx_verdict` turn what they report into one
:class:`Verdict`.

Until a verdict, the agent listens and says nothing (its greeting would land on a machine's
recording). Then :class:`MachineDetector` decides:

* a person (or no verdict the carrier can give: ``unknown``, silence) → :data:`GREET`: the
  agent's greeting, the call goes on; outcome ``answered``;
* a machine whose greeting is still playing → wait for its end (the beep), at most
  ``beep_wait_ms``, then act as below;
* a machine ready for a message (or a fax) → by policy: ``hangup`` → :data:`HANG_UP`;
  ``leave_message`` → :data:`LEAVE_MESSAGE` (speak it, then hang up; a fax is hung up on);
  ``continue`` → :data:`GREET`, the agent talks to the machine. Outcome ``voicemail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "TELNYX_AMD_EVENTS",
    "AmdStep",
    "MachineDetection",
    "MachineDetector",
    "Outcome",
    "Verdict",
    "dial_options",
    "telnyx_verdict",
    "twilio_verdict",
]

Policy = Literal["hangup", "leave_message", "continue"]
Outcome = Literal["answered", "voicemail", "unknown"]


class Verdict(StrEnum):
    """What answered: a person, a machine still greeting, a machine ready for a message
    (beep or end of greeting), a fax, or the carrier could not tell."""

    HUMAN = "human"
    MACHINE = "machine"
    MACHINE_READY = "machine_ready"
    FAX = "fax"
    UNKNOWN = "unknown"


class AmdStep(StrEnum):
    WAIT = "wait"
    GREET = "greet"
    LEAVE_MESSAGE = "leave_message"
    HANG_UP = "hang_up"


GREET, LEAVE_MESSAGE, HANG_UP, WAIT = (
    AmdStep.GREET,
    AmdStep.LEAVE_MESSAGE,
    AmdStep.HANG_UP,
    AmdStep.WAIT,
)


@dataclass(frozen=True, slots=True)
class MachineDetection:
    """An outbound call's ``machine_detection``: ``policy`` and, for ``leave_message``, the
    ``message`` to leave."""

    policy: Policy = "hangup"
    message: str | None = None

    def __post_init__(self) -> None:
        if self.policy == "leave_message" and not (self.message or "").strip():
            raise ValueError("policy leave_message needs a message")


#: Twilio ``AnsweredBy`` values (with ``DetectMessageEnd`` a machine is reported at its end).
_TWILIO = {
    "human": Verdict.HUMAN,
    "machine_start": Verdict.MACHINE,
    "machine_end_beep": Verdict.MACHINE_READY,
    "machine_end_silence": Verdict.MACHINE_READY,
    "machine_end_other": Verdict.MACHINE_READY,
    "fax": Verdict.FAX,
    "unknown": Verdict.UNKNOWN,
}

#: Telnyx AMD webhooks: event type → result → verdict (premium and standard AMD).
_TELNYX = {
    "call.machine.premium.detection.ended": {
        "human_residence": Verdict.HUMAN,
        "human_business": Verdict.HUMAN,
        "machine": Verdict.MACHINE,
        "fax_detected": Verdict.FAX,
        "silence": Verdict.UNKNOWN,
        "not_sure": Verdict.UNKNOWN,
    },
    "call.machine.premium.greeting.ended": {
        "beep_detected": Verdict.MACHINE_READY,
        "no_beep_detected": Verdict.MACHINE_READY,
    },
    "call.machine.detection.ended": {
        "human": Verdict.HUMAN,
        "machine": Verdict.MACHINE,
        "not_sure": Verdict.UNKNOWN,
    },
    "call.machine.greeting.ended": {
        "beep_detected": Verdict.MACHINE_READY,
        "ended": Verdict.MACHINE_READY,
        "not_sure": Verdict.MACHINE_READY,
    },
}

#: The Telnyx webhooks that carry AMD results.
TELNYX_AMD_EVENTS = frozenset(_TELNYX)


def twilio_verdict(answered_by: str) -> Verdict:
    """The verdict of a Twilio ``AnsweredBy`` value (an unknown value counts as ``unknown``)."""
    return _TWILIO.get(answered_by, Verdict.UNKNOWN)


def telnyx_verdict(event_type: str, result: str) -> Verdict:
    """The verdict of a Telnyx ``call.machine.*`` webhook's ``result``."""
    return _TELNYX.get(event_type, {}).get(result, Verdict.UNKNOWN)


class MachineDetector:
    """One outbound call's AMD decisions (see the module docstring). Times in ms."""

    def __init__(
        self,
        detection: MachineDetection,
        *,
        beep_wait_ms: float = 20_000,
        verdict_wait_ms: float = 35_000,
    ) -> None:
        self.detection = detection
        self.beep_wait_ms = beep_wait_ms
        #: No verdict this long after the media started (the carrier sent none): greet.
        self.verdict_wait_ms = verdict_wait_ms
        self.step: AmdStep = WAIT
        self.outcome: Outcome | None = None
        self._machine_since: float | None = None
        self._started_at: float | None = None

    def start(self, now: float) -> None:
        """The call's media started: the wait for a verdict begins."""
        self._started_at = now

    @property
    def listening(self) -> bool:
        """No decision yet: the agent must not speak, the provider hears nothing."""
        return self.step is WAIT

    @property
    def due_at(self) -> float | None:
        """When a machine whose greeting has not been seen to end is acted on anyway, or a
        call with no verdict at all is greeted."""
        if self.step is not WAIT:
            return None
        if self._machine_since is not None:
            return self._machine_since + self.beep_wait_ms
        if self._started_at is not None:
            return self._started_at + self.verdict_wait_ms
        return None

    def verdict(self, verdict: Verdict, now: float) -> AmdStep | None:
        """A verdict from the carrier; returns the step decided now (None: keep waiting,
        or already decided — later verdicts change nothing)."""
        if self.step is not WAIT:
            return None
        match verdict:
            case Verdict.HUMAN | Verdict.UNKNOWN:
                return self._decide(GREET, "answered")
            case Verdict.MACHINE:
                self._machine_since = now
                return None
            case Verdict.MACHINE_READY:
                return self._machine()
            case Verdict.FAX:
                return self._decide(
                    GREET if self.detection.policy == "continue" else HANG_UP, "voicemail"
                )

    def tick(self, now: float) -> AmdStep | None:
        """A machine's greeting ran past ``beep_wait_ms``: act as if it had ended. No verdict
        within ``verdict_wait_ms``: greet (outcome ``unknown``)."""
        due = self.due_at
        if due is None or now < due:
            return None
        if self._machine_since is None:
            return self._decide(GREET, "unknown")
        return self._machine()

    def _machine(self) -> AmdStep:
        steps: dict[str, AmdStep] = {
            "hangup": HANG_UP,
            "leave_message": LEAVE_MESSAGE,
            "continue": GREET,
        }
        return self._decide(steps[self.detection.policy], "voicemail")

    def _decide(self, step: AmdStep, outcome: Outcome) -> AmdStep:
        self.step, self.outcome = step, outcome
        return step


def dial_options(carrier: str, public_url: str) -> dict[str, str]:
    """What to add to the carrier's dial request to get AMD verdicts during the call: Twilio
    ``DetectMessageEnd`` in the background (``AsyncAmd``) with its callback to our
    ``/twilio/amd``; Telnyx premium AMD (its ``call.machine.premium.*`` webhooks)."""
    if carrier == "twilio":
        return {
            "MachineDetection": "DetectMessageEnd",
            "AsyncAmd": "true",
            "AsyncAmdStatusCallback": f"{public_url}/twilio/amd",
            "AsyncAmdStatusCallbackMethod": "POST",
        }
    return {"answering_machine_detection": "premium"}
