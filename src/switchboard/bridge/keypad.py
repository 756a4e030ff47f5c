"""The caller's keypad (DTMF), as pure decisions: digits in, what they mean out.

Theory of operation
-------------------
Digits reach the call from the carrier's media stream (Twilio and Telnyx ``dtmf`` events)
and, on Telnyx, also from the ``call.dtmf.received`` webhook: the same press may come twice.
The first source that reports a digit becomes the call's source and the other's digits are
ignored, so each press counts once whichever path is faster.

A digit then goes, in this order of precedence, to:

1. **a collection** (the ``collect_digits`` tool, :meth:`Keypad.collect`): digits gather
   without the model hearing each key until ``finish_on_key`` (not kept), ``max_digits``, or
   ``timeout_ms`` without a key (for the first key too) ends it → :class:`DigitsCollected`.
   Digits pressed just before (still waiting for their group to close) count as typed ahead.
   With ``redact`` the keypad is *redacting* from the collection's start to its end: digits
   are recorded as ``*``, and :attr:`Keypad.redacting` / :attr:`Keypad.spans` tell other
   parts of the bridge (the recordings) which stretch of the call to blank;
2. **the agent's menu** (``dtmf_menu``): a digit with a menu entry acts at once →
   :class:`MenuSelected`, no model involved;
3. **the agent**: digits pressed within ``gap_ms`` of each other form one group, sent as one
   caller input once the gap passes (or at once on ``#``) → :class:`DigitsForAgent`
   ("caller pressed 4 2").

Times are milliseconds on the session's clock; :attr:`Keypad.due_at` is when :meth:`tick`
must run next (a group to close, a collection to time out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DIGITS",
    "DigitRecorded",
    "DigitsCollected",
    "DigitsForAgent",
    "Keypad",
    "KeypadEvent",
    "MenuChoice",
    "MenuSelected",
]

#: The keys a DTMF keypad has (A–D exist on some keypads and in RFC 4733).
DIGITS = frozenset("0123456789*#ABCD")

Source = Literal["media", "webhook"]


@dataclass(frozen=True, slots=True)
class MenuChoice:
    """What one key of an agent's ``dtmf_menu`` does (exactly one of the fields is set)."""

    transfer: str | None = None
    say: str | None = None
    hang_up: bool = False


@dataclass(frozen=True, slots=True)
class DigitsForAgent:
    """Digits for the model as one caller input (``digits`` without separators, e.g. "42")."""

    digits: str

    @property
    def text(self) -> str:
        """The caller input the model gets: ``caller pressed 4 2``."""
        return "caller pressed " + " ".join(self.digits)


@dataclass(frozen=True, slots=True)
class MenuSelected:
    digit: str
    choice: MenuChoice


@dataclass(frozen=True, slots=True)
class DigitsCollected:
    """A collection ended: ``digits`` as pressed, ``ended_by`` ``finish_key``,
    ``max_digits``, ``timeout`` or ``cancelled``."""

    digits: str
    ended_by: str
    redacted: bool


@dataclass(frozen=True, slots=True)
class DigitRecorded:
    """A key to put on the call's timeline (``*`` for every key while redacting)."""

    shown: str
    source: str
    at_ms: float


KeypadEvent = DigitsForAgent | MenuSelected | DigitsCollected | DigitRecorded


@dataclass(slots=True)
class _Collection:
    max_digits: int
    finish_on_key: str
    timeout_ms: float
    redact: bool
    deadline: float
    digits: list[str] = field(default_factory=list)


class Keypad:
    """One call's keypad (see the module docstring). Not thread-safe; one per call."""

    def __init__(self, menu: Mapping[str, MenuChoice] | None = None, *, gap_ms: float = 1500):
        self.menu = dict(menu or {})
        self.gap_ms = gap_ms
        self.source: Source | None = None
        self._group: list[str] = []
        self._group_due: float | None = None
        self._collection: _Collection | None = None
        #: Redacted stretches of the call, ``(start_ms, end_ms)``; end None while under way.
        self.spans: list[tuple[float, float | None]] = []

    @property
    def redacting(self) -> bool:
        """A redacting collection is under way: keys and caller audio must not be kept."""
        return self._collection is not None and self._collection.redact

    @property
    def collecting(self) -> bool:
        return self._collection is not None

    @property
    def due_at(self) -> float | None:
        due = [t for t in (self._group_due,) if t is not None]
        if self._collection is not None:
            due.append(self._collection.deadline)
        return min(due) if due else None

    def press(self, digit: str, source: Source, now: float) -> list[KeypadEvent]:
        """A key reported by ``source``; an unknown key or the other source's report is
        ignored (``[]``)."""
        if digit not in DIGITS:
            return []
        if self.source is None:
            self.source = source
        elif source != self.source:
            return []
        shown = "*" if self.redacting else digit
        out: list[KeypadEvent] = [DigitRecorded(shown, source, now)]
        coll = self._collection
        if coll is not None:
            return out + self._collect(coll, digit, now)
        choice = self.menu.get(digit)
        if choice is not None and not self._group:
            return [*out, MenuSelected(digit, choice)]
        self._group.append(digit)
        if digit == "#":
            return out + self._close_group()
        self._group_due = now + self.gap_ms
        return out

    def tick(self, now: float) -> list[KeypadEvent]:
        """Close a group whose gap passed; end a collection that timed out."""
        out: list[KeypadEvent] = []
        if self._group_due is not None and now >= self._group_due:
            out += self._close_group()
        coll = self._collection
        if coll is not None and now >= coll.deadline:
            out.append(self._finish(coll, "timeout", now))
        return out

    def collect(
        self, *, max_digits: int, finish_on_key: str, timeout_ms: float, redact: bool, now: float
    ) -> list[KeypadEvent]:
        """Start collecting (one collection at a time: a new one cancels the old). Keys of an
        open group count as typed ahead; they may complete the collection at once."""
        out: list[KeypadEvent] = []
        if self._collection is not None:
            out.append(self._finish(self._collection, "cancelled", now))
        coll = _Collection(max_digits, finish_on_key, timeout_ms, redact, now + timeout_ms)
        self._collection = coll
        if redact:
            self.spans.append((now, None))
        ahead, self._group, self._group_due = self._group, [], None
        for digit in ahead:
            if self._collection is coll:
                out += self._collect(coll, digit, now)
        return out

    def cancel(self, now: float) -> list[KeypadEvent]:
        """End the collection under way, if any (the call ends, the tool gave up)."""
        coll = self._collection
        return [self._finish(coll, "cancelled", now)] if coll is not None else []

    # -- internals -------------------------------------------------------------------------------
    def _collect(self, coll: _Collection, digit: str, now: float) -> list[KeypadEvent]:
        if coll.finish_on_key and digit in coll.finish_on_key:
            return [self._finish(coll, "finish_key", now)]
        coll.digits.append(digit)
        coll.deadline = now + coll.timeout_ms
        if len(coll.digits) >= coll.max_digits:
            return [self._finish(coll, "max_digits", now)]
        return []

    def _finish(self, coll: _Collection, ended_by: str, now: float) -> DigitsCollected:
        self._collection = None
        if coll.redact and self.spans and self.spans[-1][1] is None:
            self.spans[-1] = (self.spans[-1][0], now)
        return DigitsCollected("".join(coll.digits), ended_by, coll.redact)

    def _close_group(self) -> list[KeypadEvent]:
        digits = "".join(self._group)
        self._group, self._group_due = [], None
        return [DigitsForAgent(digits)] if digits else []
