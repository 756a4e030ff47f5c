"""Fuzzy intent matching and slot extraction over (imperfect) transcripts.

Scoring an utterance against an intent (0..1), the best of its examples:

* token F1 over content words (stop words dropped), where two words match when equal or, for
  words of 4+ letters, when ``difflib`` rates them ≥ 0.8 (so "transfered" ~ "transfer");
* blended 60/40 with ``difflib.SequenceMatcher`` over the whole normalised strings;
* plus 0.35 when one of the intent's keywords occurs, and 0.3 when a value of one of its
  ``choice`` slots does ("billing" alone points to a transfer).

Slots are extracted by type: ``choice`` (a value or synonym occurs), ``number`` (first number,
spoken or written: see :mod:`.numbers`), ``digits`` (its digit string), ``text`` (the utterance).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

from switchboard.providers.local.agent import AgentScript, IntentSpec, SlotSpec
from switchboard.providers.local.numbers import first_number

__all__ = ["IntentMatch", "extract_slot", "match_intent", "normalise", "score_intent"]

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "i",
        "me",
        "my",
        "we",
        "you",
        "your",
        "to",
        "of",
        "for",
        "and",
        "or",
        "is",
        "are",
        "am",
        "be",
        "can",
        "could",
        "would",
        "will",
        "please",
        "just",
        "it",
        "this",
        "that",
        "do",
        "does",
        "like",
        "want",
        "wanna",
        "need",
        "with",
        "on",
        "in",
        "at",
        "so",
        "um",
        "uh",
        "hi",
        "hello",
        "hey",
        "there",
        "some",
    ]
)  # fmt: skip
_WORD = re.compile(r"[a-z0-9']+")


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return _WORD.findall(text.lower().replace("-", " "))


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in _STOP] or words


@lru_cache(maxsize=4096)
def _similar(a: str, b: str) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) < 4:
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def _hits(needles: list[str], hay: list[str]) -> int:
    return sum(1 for n in needles if any(_similar(n, h) for h in hay))


def _phrase_in(phrase: str, words: list[str]) -> bool:
    target = normalise(phrase)
    if not target:
        return False
    n = len(target)
    return any(
        all(_similar(t, w) for t, w in zip(target, words[i : i + n], strict=True))
        for i in range(len(words) - n + 1)
    )


def _example_score(words: list[str], example: str) -> float:
    ex = normalise(example)
    u, e = _content(words), _content(ex)
    if not u or not e:
        return 0.0
    precision = _hits(u, e) / len(u)
    recall = _hits(e, u) / len(e)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ratio = difflib.SequenceMatcher(None, " ".join(words), " ".join(ex)).ratio()
    return 0.6 * f1 + 0.4 * ratio


def score_intent(text: str, intent: IntentSpec, slots: dict[str, SlotSpec]) -> float:
    """How well ``text`` fits ``intent`` (0..1; see the module docstring)."""
    words = normalise(text)
    if not words:
        return 0.0
    score = max((_example_score(words, ex) for ex in intent.examples), default=0.0)
    if any(_phrase_in(k, words) for k in intent.keywords):
        score += 0.35
    for name in intent.slots:
        spec = slots[name]
        if spec.type == "choice" and _choice(words, spec) is not None:
            score += 0.3
            break
    return min(score, 1.0)


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The best intent for an utterance and its score."""

    intent: IntentSpec
    score: float


def match_intent(text: str, agent: AgentScript) -> IntentMatch | None:
    """The best-scoring intent at or above ``agent.match_threshold``, or ``None``."""
    best: IntentMatch | None = None
    for intent in agent.intents:
        score = score_intent(text, intent, agent.slots)
        if best is None or score > best.score:
            best = IntentMatch(intent, score)
    if best is None or best.score < agent.match_threshold:
        return None
    return best


def _choice(words: list[str], spec: SlotSpec) -> str | None:
    for value, synonyms in spec.values.items():
        if any(_phrase_in(p, words) for p in (value, *synonyms)):
            return value
    return None


def extract_slot(text: str, spec: SlotSpec) -> str | int | None:
    """The slot's value in ``text``, or ``None`` when it is not there."""
    match spec.type:
        case "choice":
            return _choice(normalise(text), spec)
        case "number":
            number = first_number(text)
            return number.value if number is not None else None
        case "digits":
            number = first_number(text)
            return number.digits if number is not None else None
        case "text":
            stripped = text.strip()
            return stripped or None
