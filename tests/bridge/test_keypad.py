"""The keypad's decisions (``bridge/keypad.py``), with no event loop."""

from __future__ import annotations

from collections.abc import Sequence

from switchboard.bridge.keypad import (
    DigitRecorded,
    DigitsCollected,
    DigitsForAgent,
    Keypad,
    MenuChoice,
    MenuSelected,
)


def redacting(pad: Keypad) -> bool:  # a call, so mypy does not narrow the property
    return pad.redacting


def meaning(events: Sequence[object]) -> list[object]:
    return [e for e in events if not isinstance(e, DigitRecorded)]


def test_digits_group_until_the_gap_then_go_to_the_agent() -> None:
    pad = Keypad(gap_ms=1000)
    assert meaning(pad.press("4", "media", 0)) == []
    assert meaning(pad.press("2", "media", 500)) == []
    assert pad.due_at == 1500
    assert pad.tick(1400) == []
    (event,) = pad.tick(1500)
    assert event == DigitsForAgent("42") and event.text == "caller pressed 4 2"
    assert pad.due_at is None


def test_pound_closes_the_group_at_once() -> None:
    pad = Keypad()
    pad.press("1", "media", 0)
    assert meaning(pad.press("#", "media", 100)) == [DigitsForAgent("1#")]


def test_the_first_source_wins_and_unknown_keys_are_ignored() -> None:
    pad = Keypad(gap_ms=100)
    assert pad.press("5", "webhook", 0) == [DigitRecorded("5", "webhook", 0)]
    assert pad.press("5", "media", 10) == []  # the same press, reported twice
    assert pad.press("x", "webhook", 20) == []
    assert pad.tick(100) == [DigitsForAgent("5")]


def test_menu_keys_act_at_once_others_go_to_the_agent() -> None:
    billing = MenuChoice(transfer="billing")
    pad = Keypad({"1": billing}, gap_ms=100)
    assert meaning(pad.press("1", "media", 0)) == [MenuSelected("1", billing)]
    pad.press("9", "media", 10)
    assert pad.tick(110) == [DigitsForAgent("9")]


def test_collection_ends_on_the_finish_key_and_redacts() -> None:
    pad = Keypad()
    assert pad.collect(max_digits=8, finish_on_key="#", timeout_ms=5000, redact=True, now=0) == []
    assert redacting(pad) and pad.spans == [(0, None)]
    assert pad.press("7", "media", 100) == [DigitRecorded("*", "media", 100)]
    pad.press("3", "media", 200)
    events = pad.press("#", "media", 300)
    assert events == [DigitRecorded("*", "media", 300), DigitsCollected("73", "finish_key", True)]
    assert not redacting(pad) and pad.spans == [(0, 300)]
    assert pad.press("4", "media", 400) == [DigitRecorded("4", "media", 400)]  # shown again


def test_collection_ends_at_max_digits_or_timeout_and_takes_typed_ahead_keys() -> None:
    pad = Keypad(gap_ms=1000)
    pad.press("1", "media", 0)
    assert pad.collect(max_digits=2, finish_on_key="", timeout_ms=500, redact=False, now=10) == []
    assert meaning(pad.press("2", "media", 20)) == [DigitsCollected("12", "max_digits", False)]
    pad.collect(max_digits=4, finish_on_key="#", timeout_ms=500, redact=False, now=100)
    pad.press("5", "media", 300)
    assert pad.due_at == 800  # each key restarts the wait
    assert pad.tick(800) == [DigitsCollected("5", "timeout", False)]


def test_a_new_collection_cancels_the_old_and_cancel_closes_the_span() -> None:
    pad = Keypad()
    pad.collect(max_digits=4, finish_on_key="#", timeout_ms=500, redact=True, now=0)
    again = pad.collect(max_digits=4, finish_on_key="#", timeout_ms=500, redact=False, now=50)
    assert again == [DigitsCollected("", "cancelled", True)]
    assert pad.spans == [(0, 50)]
    assert pad.cancel(60) == [DigitsCollected("", "cancelled", False)]
    assert pad.cancel(70) == []
