"""Answering-machine detection's pure decisions (``telephony/amd.py``)."""

from __future__ import annotations

import pytest

from switchboard.telephony.amd import (
    AmdStep,
    MachineDetection,
    MachineDetector,
    Verdict,
    dial_options,
    telnyx_verdict,
    twilio_verdict,
)


@pytest.mark.parametrize(
    ("answered_by", "verdict"),
    [
        ("human", Verdict.HUMAN),
        ("machine_start", Verdict.MACHINE),
        ("machine_end_beep", Verdict.MACHINE_READY),
        ("machine_end_silence", Verdict.MACHINE_READY),
        ("machine_end_other", Verdict.MACHINE_READY),
        ("fax", Verdict.FAX),
        ("unknown", Verdict.UNKNOWN),
        ("something_new", Verdict.UNKNOWN),
    ],
)
def test_twilio_answered_by(answered_by: str, verdict: Verdict) -> None:
    assert twilio_verdict(answered_by) is verdict


def test_telnyx_results() -> None:
    premium = "call.machine.premium.detection.ended"
    assert telnyx_verdict(premium, "human_business") is Verdict.HUMAN
    assert telnyx_verdict(premium, "machine") is Verdict.MACHINE
    assert telnyx_verdict(premium, "fax_detected") is Verdict.FAX
    assert telnyx_verdict(premium, "silence") is Verdict.UNKNOWN
    greeting = "call.machine.premium.greeting.ended"
    assert telnyx_verdict(greeting, "beep_detected") is Verdict.MACHINE_READY
    assert telnyx_verdict("call.machine.detection.ended", "human") is Verdict.HUMAN
    assert telnyx_verdict("call.unknown", "human") is Verdict.UNKNOWN


def test_a_person_is_greeted_and_later_verdicts_change_nothing() -> None:
    amd = MachineDetector(MachineDetection("hangup"))
    listening = [amd.listening]
    assert amd.verdict(Verdict.HUMAN, 0) is AmdStep.GREET
    listening.append(amd.listening)
    assert listening == [True, False] and amd.outcome == "answered"
    assert amd.verdict(Verdict.MACHINE_READY, 10) is None


@pytest.mark.parametrize(
    ("policy", "step"),
    [
        ("hangup", AmdStep.HANG_UP),
        ("leave_message", AmdStep.LEAVE_MESSAGE),
        ("continue", AmdStep.GREET),
    ],
)
def test_a_machine_waits_for_its_beep_then_the_policy(policy: str, step: AmdStep) -> None:
    amd = MachineDetector(MachineDetection(policy, "hi"), beep_wait_ms=5000)  # type: ignore[arg-type]
    assert amd.verdict(Verdict.MACHINE, 100) is None and amd.due_at == 5100
    assert amd.verdict(Verdict.MACHINE_READY, 3000) is step
    assert amd.outcome == "voicemail" and amd.due_at is None


def test_a_greeting_with_no_beep_is_acted_on_after_the_wait() -> None:
    amd = MachineDetector(MachineDetection("leave_message", "hi"), beep_wait_ms=5000)
    amd.verdict(Verdict.MACHINE, 0)
    assert amd.tick(4999) is None
    assert amd.tick(5000) is AmdStep.LEAVE_MESSAGE


def test_fax_is_hung_up_on_and_unknown_is_a_person() -> None:
    assert MachineDetector(MachineDetection("leave_message", "x")).verdict(Verdict.FAX, 0) is (
        AmdStep.HANG_UP
    )
    assert MachineDetector(MachineDetection()).verdict(Verdict.UNKNOWN, 0) is AmdStep.GREET


def test_leave_message_needs_a_message_and_dial_options() -> None:
    with pytest.raises(ValueError, match="needs a message"):
        MachineDetection("leave_message", " ")
    twilio = dial_options("twilio", "https://sb.example.com")
    assert twilio["MachineDetection"] == "DetectMessageEnd" and twilio["AsyncAmd"] == "true"
    assert twilio["AsyncAmdStatusCallback"] == "https://sb.example.com/twilio/amd"
    assert dial_options("telnyx", "https://x") == {"answering_machine_detection": "premium"}


def test_no_verdict_at_all_greets_after_the_wait() -> None:
    amd = MachineDetector(MachineDetection("hangup"), verdict_wait_ms=1000)
    due = [amd.due_at]  # not started: nothing is due
    amd.start(100)
    due.append(amd.due_at)
    assert amd.tick(1099) is None
    assert amd.tick(1100) is AmdStep.GREET
    due.append(amd.due_at)
    assert due == [None, 1100, None] and amd.outcome == "unknown"
