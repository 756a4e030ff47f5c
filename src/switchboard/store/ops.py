"""Writes as data: one frozen value per kind of change to a call record.

Every write to the store is one of these ops, applied by :func:`switchboard.store.writes.
apply_batch` inside a transaction, whether it comes from :meth:`CallStore.create_call` (awaited)
or from a call's :class:`~switchboard.store.CallRecorder` (queued, batched). Ops are pure: they
hold resolved values (ids and timestamps are fixed when the op is made, not when it is
written, so a delayed or replayed batch writes what happened when it happened) and they
validate on construction, so a programming error (an unknown field, a bad role) raises where
the write was asked for rather than in the background writer.

Webhook events are ops too (:class:`EnqueueEvent`): put in one batch with the record change
they report, they are committed with it or not at all, which is what makes the outbox durable
without ever announcing a change that was not recorded. :class:`Group` keeps such ops together
even when the background writer retries a failed batch op by op.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from switchboard.cost import CostBreakdown
from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.store.models import utcnow
from switchboard.store.records import CallRecord, CallStatus, normalise_status

__all__ = [
    "ANALYSIS_STATUSES",
    "UPDATABLE_FIELDS",
    "AddTimeline",
    "AddToolCall",
    "AddTranscript",
    "AddTurnLatency",
    "CreateCall",
    "EnqueueEvent",
    "FinalizeCall",
    "Group",
    "MergeExtra",
    "Op",
    "RequestAnalysis",
    "SetAnalysis",
    "UpdateCall",
]

#: What ``calls.analysis_status`` may hold (None: the agent asked for no analysis).
ANALYSIS_STATUSES = frozenset({"pending", "running", "done", "not_analysed", "failed"})

UPDATABLE_FIELDS = frozenset(
    {
        "carrier",
        "carrier_call_id",
        "direction",
        "provider",
        "providers",
        "model",
        "agent",
        "from_number",
        "to_number",
        "status",
        "end_reason",
        "answered_at",
        "ended_at",
        "duration_s",
        "usage",
        "cost",
        "error",
        "extra",
    }
)


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - UPDATABLE_FIELDS)
    if unknown:
        raise StoreError(f"cannot update call fields {', '.join(unknown)}")


def _check_role(role: str) -> None:
    if role not in ("caller", "agent"):
        raise StoreError(f"transcript role must be 'caller' or 'agent', not {role!r}")


@dataclass(frozen=True, slots=True)
class CreateCall:
    """Insert a call record; ``call_id`` and ``created_at`` default to a new id and now."""

    carrier: str | None
    carrier_call_id: str | None
    from_number: str | None
    to_number: str | None
    direction: str = "inbound"
    agent: str | None = None
    provider: str | None = None
    model: str | None = None
    status: str = CallStatus.RINGING
    call_id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex}")
    created_at: datetime = field(default_factory=utcnow)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", str(self.direction))
        object.__setattr__(self, "status", normalise_status(self.status))
        object.__setattr__(self, "extra", dict(self.extra))

    def record(self) -> CallRecord:
        """The record this op creates, as :meth:`CallStore.get_call` would read it back."""
        return CallRecord(
            id=self.call_id,
            status=self.status,
            created_at=self.created_at,
            carrier=self.carrier,
            carrier_call_id=self.carrier_call_id,
            direction=self.direction,
            provider=self.provider,
            providers=(self.provider,) if self.provider else (),
            model=self.model,
            agent=self.agent,
            from_number=self.from_number,
            to_number=self.to_number,
            extra=dict(self.extra),
        )


@dataclass(frozen=True, slots=True)
class UpdateCall:
    """Set call fields (any of :data:`UPDATABLE_FIELDS`); writing it to an unknown call fails."""

    call_id: str
    fields: Mapping[str, Any]

    def __post_init__(self) -> None:
        _check_fields(self.fields)


@dataclass(frozen=True, slots=True)
class MergeExtra:
    """Set keys of a call's ``extra`` and keep the others; a None value removes its key
    (the recording link: set when the call's recording is finished, removed when it expires)."""

    call_id: str
    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", dict(self.values))


@dataclass(frozen=True, slots=True)
class FinalizeCall:
    """End the call: status, reason, ``ended_at`` and billable ``duration_s`` (from the answer).

    ``usage``, ``cost`` and ``error`` left None keep what was recorded earlier.
    """

    call_id: str
    status: str
    end_reason: str | None
    usage: Usage | None = None
    cost: CostBreakdown | None = None
    error: str | None = None
    ended_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", str(self.status))


@dataclass(frozen=True, slots=True)
class AddTranscript:
    """Append an utterance by ``"caller"`` or ``"agent"`` (offsets in ms from the call start)."""

    call_id: str
    role: str
    text: str
    started_ms: int | None = None
    ended_ms: int | None = None
    interrupted: bool = False

    def __post_init__(self) -> None:
        _check_role(self.role)


@dataclass(frozen=True, slots=True)
class AddToolCall:
    """Append a tool invocation (``result`` is what went back to the model)."""

    call_id: str
    name: str
    arguments: Mapping[str, Any]
    result: Mapping[str, Any]
    ok: bool
    duration_ms: float
    provider_call_id: str | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class AddTimeline:
    """Append a lifecycle event (``answered``, ``barge_in``...)."""

    call_id: str
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class AddTurnLatency:
    """Caller stopped speaking → first agent audio, for turn number ``turn``."""

    call_id: str
    turn: int
    latency_ms: float


@dataclass(frozen=True, slots=True)
class EnqueueEvent:
    """Queue a webhook event about a call for delivery to each of ``urls`` (the outbox).

    Attributes:
        call_id: the call the event is about (its events reach each URL in order).
        type: the event type (``call.ended``...; integrations/events.py names them).
        data: the event's ``data`` object (JSON-safe).
        urls: where it goes; none writes nothing.
        with_record: add the call as this transaction leaves it (status, outcome, duration,
            usage, cost, transcript, tool calls) under the keys ``data`` does not set.
        event_id: the ``webhook-id``, stable across attempts and URLs.
        at: the payload's ``timestamp``.
    """

    call_id: str
    type: str
    data: Mapping[str, Any]
    urls: tuple[str, ...]
    with_record: bool = False
    event_id: str = field(default_factory=lambda: f"evt_{uuid.uuid4().hex}")
    at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "urls", tuple(dict.fromkeys(self.urls)))
        object.__setattr__(self, "data", dict(self.data))
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise StoreError("a webhook URL must be http:// or https://")


@dataclass(frozen=True, slots=True)
class RequestAnalysis:
    """Ask for the call's post-call analysis: ``analysis_status`` becomes ``pending``.

    ``request`` (what to analyse and where ``call.analyzed`` goes) is kept in ``analysis``
    until the result replaces it, so a pending analysis survives a restart.
    """

    call_id: str
    request: Mapping[str, Any]
    due_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class SetAnalysis:
    """Store the call's analysis (a result, or why there is none) with its ``status``."""

    call_id: str
    status: str
    analysis: Mapping[str, Any]
    due_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in ANALYSIS_STATUSES:
            raise StoreError(f"analysis status must be one of {sorted(ANALYSIS_STATUSES)}")


#: A write that is not a group.
SingleOp = (
    CreateCall
    | UpdateCall
    | MergeExtra
    | FinalizeCall
    | AddTranscript
    | AddToolCall
    | AddTimeline
    | AddTurnLatency
    | EnqueueEvent
    | RequestAnalysis
    | SetAnalysis
)


@dataclass(frozen=True, slots=True)
class Group:
    """Ops that commit together or not at all, even when the background writer retries a failed
    batch op by op (e.g. :class:`FinalizeCall` with the ``call.ended`` :class:`EnqueueEvent`)."""

    ops: tuple[SingleOp, ...]


#: One write to the call records.
Op = SingleOp | Group
