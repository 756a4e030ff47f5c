"""Spoken and written numbers in transcripts (pure)."""

from __future__ import annotations

import pytest

from switchboard.providers.local.numbers import find_numbers, first_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("twenty three", [23]),
        ("I am thirty-two years old", [32]),
        ("one hundred and five people", [105]),
        ("three thousand two hundred", [3200]),
        ("a party of twelve", [12]),
        ("nineteen ninety nine", [19, 99]),
        ("table for two at seven", [2, 7]),
        ("twenty three four", [23, 4]),
        ("it costs 2,500 dollars", [2500]),
        ("about 3.5 hours", [3]),
        ("no numbers here", []),
    ],
)
def test_values(text: str, expected: list[int]) -> None:
    assert [n.value for n in find_numbers(text)] == expected


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("My account number is four five seven two nine.", "45729"),
        ("My count number is 45729.", "45729"),  # Whisper writes digits
        ("order 4 5 7 29", "45729"),
        ("call me at five five five oh one two three", "5550123"),
        ("zero four five", "045"),
    ],
)
def test_digit_strings(text: str, digits: str) -> None:
    number = first_number(text)
    assert number is not None
    assert number.digits == digits
    assert number.value == int(digits)


def test_oh_is_only_zero_next_to_digits() -> None:
    assert find_numbers("oh I see") == []


def test_positions_are_word_indices() -> None:
    number = first_number("it is twenty three now")
    assert number is not None
    assert (number.start, number.end) == (2, 4)
