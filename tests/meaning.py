"""Did speech recognition hear what the caller meant? For tests on synthesised speech.

Whisper is decoded deterministically (greedy, temperature 0: the same audio gives the same
text), but a change of model, voice or codec can still turn "opening hours" into "opening now"
or "goodbye" into "bye". Tests of what a caller said therefore check its *meaning*, the way the
local receptionist itself understands a caller: the intent the line was written for
(``providers/local/agent.yaml``'s examples and keywords, scored by ``match_intent``) and the slot
values it carries (``billing`` from "bills" or "invoice"), never one exact wording.
"""

from __future__ import annotations

from functools import cache

from switchboard.providers.local.agent import AgentScript, load_agent
from switchboard.providers.local.matching import extract_slot, match_intent

__all__ = ["intent_of", "means", "slot_of"]


@cache
def _receptionist() -> AgentScript:
    return load_agent()


def intent_of(text: str) -> str | None:
    """The packaged receptionist's intent for ``text`` (``hours``, ``transfer``...), if any."""
    found = match_intent(text, _receptionist())
    return found.intent.name if found else None


def means(text: str, intent: str) -> bool:
    """Whether ``text`` carries ``intent`` (a failing assert shows ``text`` itself)."""
    return intent_of(text) == intent


def slot_of(text: str, slot: str) -> str | int | None:
    """The value of the receptionist's ``slot`` in ``text`` (``department`` → ``billing``)."""
    return extract_slot(text, _receptionist().slots[slot])
