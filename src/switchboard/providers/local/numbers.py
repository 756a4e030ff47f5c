"""Numbers in caller speech: spoken ("twenty three", "four five seven two nine") and written.

Whisper writes most numbers as digits ("45729", "2,500") but not always ("twenty three"), so the
dialog engine reads both. :func:`find_numbers` returns every number in a transcript, in order:

* a run of number words is composed the usual way — "one hundred and five" → 105,
  "three thousand two hundred" → 3200, "twenty three" → 23;
* single digits said one after another form a digit string — "four five seven two nine" →
  ``digits="45729"`` (account numbers, phone numbers); "oh" counts as zero inside such a run;
* a number word that cannot continue the number before it starts a new one — "nineteen
  ninety nine" → 19, 99;
* written numbers ("45729", "2,500", "3.5" → 3) count too, and digit groups spoken next to
  single digits join the digit string ("4 5 7 29" → "45729").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SpokenNumber", "find_numbers", "first_number"]

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9,
}  # fmt: skip
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?|[a-z]+(?:-[a-z]+)*")


@dataclass(frozen=True, slots=True)
class SpokenNumber:
    """A number found in text.

    Attributes:
        value: its integer value (a digit string's value as a number).
        digits: the digits as said, keeping leading zeros ("0457").
        start: index of its first word in the tokenised text.
        end: index after its last word.
    """

    value: int
    digits: str
    start: int
    end: int


def _tokens(text: str) -> list[str]:
    words: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        words.extend(token.split("-") if not token[0].isdigit() else [token])
    return words


class _Composer:
    """Builds one number from words; ``feed`` says whether the word continued it."""

    def __init__(self) -> None:
        self.total = 0
        self.current = 0
        self.last: str | None = None  # "unit" | "teen" | "tens" | "hundred" | "scale"
        self.words = 0

    def feed(self, word: str) -> bool:
        if word in _UNITS:
            if self.last in ("unit", "teen"):
                return False
            self.current += _UNITS[word]
            self.last = "unit"
        elif word in _TEENS:
            if self.last in ("unit", "teen", "tens"):
                return False
            self.current += _TEENS[word]
            self.last = "teen"
        elif word in _TENS:
            if self.last in ("unit", "teen", "tens"):
                return False
            self.current += _TENS[word]
            self.last = "tens"
        elif word == "hundred":
            if self.last == "hundred":
                return False
            self.current = max(self.current, 1) * 100
            self.last = "hundred"
        elif word in _SCALES:
            self.total += max(self.current, 1) * _SCALES[word]
            self.current = 0
            self.last = "scale"
        else:
            return False
        self.words += 1
        return True

    @property
    def value(self) -> int:
        return self.total + self.current


def _is_number_word(word: str) -> bool:
    return word in _UNITS or word in _TEENS or word in _TENS or word in _SCALES


def _joins(words: list[str], i: int, composer: _Composer) -> bool:
    """Whether ``words[i]`` is an "and" inside a number ("one hundred and five")."""
    return (
        words[i] == "and"
        and composer.last in ("hundred", "scale")
        and i + 1 < len(words)
        and _is_number_word(words[i + 1])
        and words[i + 1] not in _SCALES
    )


def _raw_numbers(words: list[str]) -> list[SpokenNumber]:
    found: list[SpokenNumber] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word[0].isdigit():
            digits = word.replace(",", "").split(".")[0]
            found.append(SpokenNumber(int(digits), digits, i, i + 1))
            i += 1
            continue
        if not _is_number_word(word):
            i += 1
            continue
        composer, start = _Composer(), i
        while i < len(words):
            if _joins(words, i, composer):
                i += 1
                continue
            if not composer.feed(words[i]):
                break
            i += 1
        value = composer.value
        found.append(SpokenNumber(value, str(value), start, i))
    return found


def _is_digit_token(number: SpokenNumber, words: list[str]) -> bool:
    """A single spoken digit ("four", "oh") or a written digit group ("29")."""
    if number.end - number.start != 1:
        return False
    word = words[number.start]
    return word in _UNITS or word.isdigit()


def _near_digits(words: list[str], i: int) -> bool:
    """Whether "oh" at ``i`` sits next to a digit word (so it means zero)."""
    neighbours = words[max(0, i - 1) : i] + words[i + 1 : i + 2]
    return any(w in _UNITS or w.isdigit() for w in neighbours)


def find_numbers(text: str) -> list[SpokenNumber]:
    """Every number in ``text``, in order (see the module docstring for the rules)."""
    tokens = _tokens(text)
    words = ["zero" if w == "oh" and _near_digits(tokens, i) else w for i, w in enumerate(tokens)]
    merged: list[SpokenNumber] = []
    run = False  # whether merged[-1] is a run of digit tokens
    for number in _raw_numbers(words):
        digit = _is_digit_token(number, words)
        prev = merged[-1] if merged else None
        if prev is not None and run and digit and prev.end == number.start:
            digits = prev.digits + number.digits
            merged[-1] = SpokenNumber(int(digits), digits, prev.start, number.end)
        else:
            merged.append(number)
            run = digit
    return merged


def first_number(text: str) -> SpokenNumber | None:
    """The first number in ``text``, or ``None``."""
    numbers = find_numbers(text)
    return numbers[0] if numbers else None
