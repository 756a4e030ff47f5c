"""Backchannels ("mm-hmm", "yeah", "okay"…) per language, and counting the words that are not.

Shared by the bridge's barge-in judge (``bridge/turn_taking.py``) and the providers that decide
whether caller speech said over the agent gets an answer (``openai_realtime/gate.py``, the
pipeline's turn manager).
"""

from __future__ import annotations

import re

__all__ = ["BACKCHANNELS", "content_words", "normal_words"]

#: Backchannels per language (lower case; hyphens and punctuation are ignored when matching).
BACKCHANNELS: dict[str, frozenset[str]] = {
    "en": frozenset(
        {
            "mm hmm",
            "mhm",
            "mm",
            "hmm",
            "uh huh",
            "uh",
            "um",
            "yeah",
            "yep",
            "yup",
            "ya",
            "yes",
            "ok",
            "okay",
            "right",
            "sure",
            "alright",
            "all right",
            "i see",
            "got it",
            "oh",
            "ah",
            "aha",
            "cool",
            "great",
            "nice",
            "true",
            "exactly",
            "indeed",
            "wow",
        }
    ),
    "es": frozenset({"sí", "si", "vale", "claro", "ajá", "aja", "mm", "ya", "bueno", "ok"}),
    "fr": frozenset({"oui", "ouais", "d'accord", "ok", "mm", "hum", "ah", "bon", "voilà"}),
    "de": frozenset({"ja", "genau", "okay", "ok", "mhm", "mm", "aha", "stimmt", "gut", "klar"}),
}

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def normal_words(text: str) -> str:
    """``text`` lower case, hyphens as spaces, words only (apostrophes kept)."""
    return " ".join(_WORD.findall(text.lower().replace("-", " ")))


def content_words(text: str, backchannels: frozenset[str]) -> int:
    """How many words of ``text`` are not backchannels (multi-word ones matched first)."""
    words = normal_words(text).split()
    longest = max((p.count(" ") + 1 for p in backchannels), default=1)
    count, i = 0, 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            if " ".join(words[i : i + n]) in backchannels:
                i += n
                break
        else:
            count += 1
            i += 1
    return count
