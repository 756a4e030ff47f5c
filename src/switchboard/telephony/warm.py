"""What the carrier sides of a warm transfer share (``bridge/warm_transfer.py``): the new
leg's status as the plan reads it, and briefings waiting for the carrier to fetch them.

The carrier plays a briefing to the person who answers a warm transfer by fetching it from
us (Twilio: a participant's ``AnnounceUrl``, served by ``app/warm_routes.py``), and says
when it has played it to its end. Each waits
here under an unguessable token until the transfer is over; only the newest ``limit`` are
kept, so a transfer that never cleans up cannot grow the store. In this process only: the
carrier's fetch must reach the node running the call (docs/telephony.md#warm-transfer).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

__all__ = ["Briefing", "Briefings", "LegStatus"]

#: A warm transfer's new leg as its carrier side reports it: ringing; answered while the
#: answering-machine detection still listens (``detecting``); answered, with who answered;
#: or ended (``bridge/warm_plan.py``).
LegStatus = Literal["ringing", "detecting", "answered", "ended"]


@dataclass(frozen=True, slots=True)
class Briefing:
    """A briefing for the carrier to fetch: its text and, with an offline voice, a WAV."""

    text: str
    wav: bytes | None


class Briefings:
    """Briefings by unguessable token (the last ``limit``), for the carrier's announce fetch;
    and the carrier's word that a leg's briefing has played (Twilio's ``announcement-end``
    conference callback, by the leg's CallSid: the last ``limit`` too)."""

    def __init__(self, limit: int = 64) -> None:
        self._items: OrderedDict[str, Briefing] = OrderedDict()
        self._played: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def note_played(self, leg: str, how: str) -> None:
        """The carrier says the announcement to ``leg`` ended (``how``: its event)."""
        self._played[leg] = how
        while len(self._played) > self._limit:
            self._played.popitem(last=False)

    def played(self, leg: str) -> str | None:
        """How the announcement to ``leg`` ended, if the carrier has said so."""
        return self._played.get(leg)

    def put(self, briefing: Briefing) -> str:
        token = secrets.token_urlsafe(24)
        self._items[token] = briefing
        while len(self._items) > self._limit:
            self._items.popitem(last=False)
        return token

    def get(self, token: str) -> Briefing | None:
        return self._items.get(token)

    def discard(self, token: str) -> None:
        self._items.pop(token, None)
