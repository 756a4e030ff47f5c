"""What the store returns: frozen records of calls and of what happened during them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from switchboard.cost import CostBreakdown
from switchboard.media import Usage

__all__ = [
    "CallDetail",
    "CallPage",
    "CallRecord",
    "CallStatus",
    "TimelineEvent",
    "ToolCallRecord",
    "TranscriptEntry",
    "TurnLatency",
    "UsageRow",
    "normalise_status",
    "timeline_offsets",
]

Role = Literal["caller", "agent"]


class CallStatus(StrEnum):
    """Lifecycle of a call record (Twilio's call statuses, with underscores).

    The store accepts any status string and stores it through :func:`normalise_status`, so
    Twilio's ``in-progress`` / ``no-answer`` become ``in_progress`` / ``no_answer``.
    """

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self not in (CallStatus.QUEUED, CallStatus.RINGING, CallStatus.IN_PROGRESS)


def normalise_status(value: str) -> str:
    """One spelling for statuses: ``"in-progress"`` (Twilio) → ``"in_progress"``, lower case."""
    return str(value).strip().lower().replace("-", "_")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call (the ``calls`` row)."""

    id: str
    status: str
    created_at: datetime
    carrier: str | None = None
    carrier_call_id: str | None = None
    direction: str = "inbound"
    #: The provider serving the call (once ended: the one that ended it).
    provider: str | None = None
    model: str | None = None
    agent: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    end_reason: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    usage: Usage | None = None
    cost: CostBreakdown | None = None
    cost_total: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The post-call analysis (``{"status": ...}`` plus the result); None when none was asked.
    analysis: dict[str, Any] | None = None
    #: Every provider that served the call, in order (more than one after a failover).
    providers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One utterance; ``started_ms``/``ended_ms`` are offsets from the call's start."""

    seq: int
    role: str
    text: str
    started_ms: int | None = None
    ended_ms: int | None = None
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool invocation: ``result`` is what went back to the model (``ToolResult.output``)."""

    seq: int
    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]
    ok: bool
    duration_ms: float
    at: datetime
    provider_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """A lifecycle event of the call (``answered``, ``barge_in``, ``provider.reconnecting``...)."""

    seq: int
    at: datetime
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


def timeline_offsets(events: Sequence[TimelineEvent]) -> list[int]:
    """Each event's time in ms since the call was created, for a readable timeline.

    The call's sink records ``t_ms`` (monotonic, since the call was accepted) with each event;
    events written without it are placed by their wall-clock ``at`` since the first event.
    """
    if not events:
        return []
    first = events[0].at
    offsets = []
    for event in events:
        t_ms = event.data.get("t_ms")
        if isinstance(t_ms, int | float):
            offsets.append(int(t_ms))
        else:
            offsets.append(max(0, int((event.at - first).total_seconds() * 1000)))
    return offsets


@dataclass(frozen=True, slots=True)
class TurnLatency:
    """Caller stopped speaking → first agent audio, for one turn."""

    turn: int
    latency_ms: float


@dataclass(frozen=True, slots=True)
class CallDetail:
    """A call with everything recorded about it, each list in order."""

    record: CallRecord
    transcript: tuple[TranscriptEntry, ...] = ()
    tool_calls: tuple[ToolCallRecord, ...] = ()
    timeline: tuple[TimelineEvent, ...] = ()
    latencies: tuple[TurnLatency, ...] = ()


@dataclass(frozen=True, slots=True)
class CallPage:
    """One page of calls, newest first; pass ``next_cursor`` back for the next page."""

    items: tuple[CallRecord, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Totals for one group of :meth:`CallStore.usage_summary` (None for keys not grouped by).

    ``minutes`` sums call durations (answer to end); ``cost`` sums the calls' cost totals (USD).
    """

    calls: int
    minutes: float
    cost: float
    day: date | None = None
    provider: str | None = None
    carrier: str | None = None
    agent: str | None = None
