"""A cheap end-of-utterance judgement on a transcript, for the pipeline's end of turn (pure).

The recogniser ends an utterance on silence alone, so "my number is five five five…" said with
a pause answers half a sentence. :func:`utterance_complete` looks at the words: a turn that
ends in a conjunction, a preposition, an article or a filler ("and", "to", "the", "um"), in a
number (digits are often read in groups), on a comma or dash, or without final punctuation
(when the recogniser punctuates) sounds unfinished. The turn manager then waits up to
``max_endpoint_ms`` for more speech before answering (``turns.py``); a finished question
("…opening hours?") is answered at once.
"""

from __future__ import annotations

import re

__all__ = ["utterance_complete"]

#: Words a finished sentence rarely ends with (English).
TRAILING = frozenset(
    [
        "and",
        "or",
        "but",
        "so",
        "because",
        "if",
        "when",
        "while",
        "than",
        "which",
        "whose",
        "where",
        "to",
        "of",
        "for",
        "from",
        "with",
        "without",
        "at",
        "into",
        "onto",
        "about",
        "between",
        "through",
        "during",
        "as",
        "the",
        "a",
        "an",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "its",
        "um",
        "uh",
        "er",
        "erm",
        "plus",
        "minus",
        "point",
        "dash",
    ]
)
NUMBER_WORDS = frozenset(
    [
        "zero",
        "oh",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "million",
        "double",
        "triple",
    ]
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def utterance_complete(text: str, *, punctuated: bool = True) -> bool:
    """Whether ``text`` sounds like a finished turn (see the module docstring).

    Args:
        text: the caller's words so far in this turn.
        punctuated: the recogniser writes punctuation (Whisper, Deepgram ``punctuate``):
            then a missing final ``.``, ``?`` or ``!`` counts as unfinished.
    """
    stripped = text.strip()
    if not stripped:
        return True
    if stripped.endswith("?"):
        return True
    if stripped.endswith((",", "-", "…", "...", ";", ":")):
        return False
    words = _WORD.findall(stripped.lower())
    if not words:
        return True
    last = words[-1]
    if last in TRAILING:
        return False
    if last.isdigit() or last in NUMBER_WORDS:
        return False  # "my number is 555" may go on
    return not punctuated or stripped.endswith((".", "!"))
