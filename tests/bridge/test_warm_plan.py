"""The warm transfer's decisions (``bridge/warm_plan.py``): pure, no clock, no sockets."""

from __future__ import annotations

import pytest

from switchboard.bridge.warm_plan import (
    Brief,
    GiveUp,
    Join,
    WarmPlan,
    briefing_text,
    failure_message,
)


def test_a_person_is_briefed_then_joined() -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=30_000.0)
    assert plan.leg("ringing") is None
    assert plan.tick(29_999.0) is None
    assert plan.leg("answered", "human") == Brief()
    assert plan.leg("answered", "human") is None  # briefed once
    assert plan.tick(31_000.0) is None  # the ring deadline no longer applies
    assert plan.briefed() == Join()
    assert plan.done and plan.state == "joined"
    assert plan.leg("ended") is None  # final


@pytest.mark.parametrize("answered_by", [None, "unknown", "HUMAN"])
def test_detection_that_cannot_tell_counts_as_a_person(answered_by: str | None) -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=1000.0)
    assert plan.leg("answered", answered_by) == Brief()


@pytest.mark.parametrize("answered_by", ["machine_start", "machine_end_beep", "fax"])
def test_a_machine_gives_the_caller_back(answered_by: str) -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=1000.0)
    assert plan.leg("answered", answered_by) == GiveUp("voicemail")
    assert plan.briefed() is None and plan.reason == "voicemail"


def test_no_answer_by_the_deadline_or_a_leg_that_ends_ringing() -> None:
    plan = WarmPlan(started_ms=500.0, ring_ms=1000.0)
    assert plan.tick(1499.0) is None
    assert plan.tick(1500.0) == GiveUp("no_answer")
    assert plan.tick(9999.0) is None
    other = WarmPlan(started_ms=0.0, ring_ms=1000.0)
    assert other.leg("ended") == GiveUp("no_answer")  # busy, no-answer, failed


def test_a_leg_dropped_during_the_briefing_is_not_joined() -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=1000.0)
    assert plan.leg("answered", "human") == Brief()
    assert plan.leg("ended") == GiveUp("ended")
    assert plan.briefed() is None


def test_a_carrier_failure_gives_up_once() -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=1000.0)
    assert plan.failed() == GiveUp("failed")
    assert plan.failed() is None


def test_the_briefing_prefers_the_models_summary() -> None:
    text = briefing_text([("user", "hi")], summary="Ana wants a refund.", agent="frontdesk")
    assert text == (
        "Hello, this is the frontdesk assistant with a caller for you. Ana wants a refund. "
        "I am connecting you now."
    )


def test_the_briefing_quotes_the_callers_last_lines_within_the_limit() -> None:
    lines = [
        ("user", "first thing, long ago " * 10),
        ("assistant", "how can I help"),
        ("user", "my order 42 is late."),
        ("user", "I want it by Friday"),
    ]
    text = briefing_text(lines, max_chars=60)
    assert "The caller said: my order 42 is late; I want it by Friday." in text
    assert "long ago" not in text and "how can I help" not in text
    assert briefing_text([]) == (
        "Hello, this is the virtual assistant with a caller for you. I am connecting you now."
    )


def test_the_failure_message_says_why_and_that_the_caller_is_back() -> None:
    message = failure_message("no_answer", "+15550100200")
    assert "nobody answered" in message and "+15550100200" in message
    assert "back on the line with you" in message


def test_an_answered_leg_waits_for_detection_then_counts_as_a_person() -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=3000.0, detect_ms=2000.0)
    assert plan.leg("detecting", now_ms=2500.0) is None
    assert plan.tick(3500.0) is None  # answered: the ring deadline is over
    assert plan.leg("answered", "machine", now_ms=4000.0) == GiveUp("voicemail")
    quiet = WarmPlan(started_ms=0.0, ring_ms=3000.0, detect_ms=2000.0)
    assert quiet.leg("detecting", now_ms=1000.0) is None
    assert quiet.tick(2999.0) is None
    assert quiet.tick(3000.0) == Brief()  # no verdict in time: a person
    assert quiet.leg("answered", "human") is None and quiet.briefed() == Join()


def test_the_join_waits_for_the_carriers_end_of_the_briefing() -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=30_000.0, play_slack_ms=10_000.0)
    assert plan.leg("answered", "human", now_ms=1000.0) == Brief()
    assert plan.tick(60_000.0) is None  # no backstop before the briefing is sent
    plan.briefing_sent(61_000.0, 7_500.0)
    assert plan.tick(68_500.0) is None  # its length has passed: the carrier has not said so
    assert plan.leg("answered", "human", now_ms=69_000.0) is None
    assert plan.briefed() == Join() and plan.joined_by == "carrier"
    assert plan.tick(80_000.0) is None and plan.briefed() is None  # joined once


def test_without_the_carriers_word_the_person_is_joined_after_a_backstop() -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=30_000.0, play_slack_ms=10_000.0)
    assert plan.leg("answered", "human") == Brief()
    plan.briefing_sent(2000.0, 5000.0)
    assert plan.tick(16_999.0) is None
    assert plan.tick(17_000.0) == Join() and plan.joined_by == "timeout"


def test_a_leg_that_hangs_up_while_briefed_is_not_joined_by_the_backstop() -> None:
    plan = WarmPlan(started_ms=0.0, ring_ms=30_000.0)
    assert plan.leg("answered", "human") == Brief()
    plan.briefing_sent(0.0, 1000.0)
    assert plan.leg("ended") == GiveUp("ended")
    assert plan.tick(60_000.0) is None and plan.joined_by is None
