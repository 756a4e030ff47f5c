"""Writes shared by :class:`CallStore`'s direct methods and the batching :class:`CallRecorder`.

Each function adds to (or updates through) an open ``AsyncSession``; the caller owns the
transaction. Converting rows to records lives here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.cost import CostBreakdown
from switchboard.errors import StoreError
from switchboard.providers.base import Usage
from switchboard.store.models import (
    CallRow,
    TimelineRow,
    ToolCallRow,
    TranscriptRow,
    TurnLatencyRow,
    utcnow,
)
from switchboard.store.records import CallRecord, normalise_status

__all__ = [
    "UPDATABLE_FIELDS",
    "Op",
    "add_timeline",
    "add_tool_call",
    "add_transcript",
    "add_turn_latency",
    "finalize_call",
    "row_to_record",
    "update_call",
]

#: A unit of work the writer applies inside a transaction.
Op = Callable[[AsyncSession], Awaitable[None]]

UPDATABLE_FIELDS = frozenset(
    {
        "carrier",
        "carrier_call_id",
        "direction",
        "provider",
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

_SeqRow = type[TranscriptRow] | type[ToolCallRow] | type[TimelineRow]


async def _next_seq(session: AsyncSession, model: _SeqRow, call_id: str) -> int:
    current = await session.scalar(select(func.max(model.seq)).where(model.call_id == call_id))
    return 0 if current is None else int(current) + 1


def _columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - UPDATABLE_FIELDS)
    if unknown:
        raise StoreError(f"cannot update call fields {', '.join(unknown)}")
    out = dict(fields)
    if isinstance(out.get("usage"), Usage):
        out["usage"] = out["usage"].as_dict()
    if "cost" in out:
        cost = out["cost"]
        if isinstance(cost, CostBreakdown):
            out["cost"] = cost.as_dict()
            out["cost_total"] = cost.total
        elif isinstance(cost, dict):
            out["cost_total"] = float(cost.get("total", 0.0))
        else:
            out["cost_total"] = None
    if "status" in out and out["status"] is not None:
        out["status"] = normalise_status(out["status"])
    return out


async def update_call(session: AsyncSession, call_id: str, fields: Mapping[str, Any]) -> None:
    """Set ``fields`` on the call. Raises StoreError for unknown fields or an unknown call."""
    values = _columns(fields)
    if not values:
        return
    result = await session.execute(update(CallRow).where(CallRow.id == call_id).values(**values))
    if getattr(result, "rowcount", 1) == 0:
        raise StoreError(f"no call {call_id!r}")


async def finalize_call(
    session: AsyncSession,
    call_id: str,
    *,
    status: str,
    end_reason: str | None,
    usage: Usage | None,
    cost: CostBreakdown | None,
    error: str | None = None,
    ended_at: datetime | None = None,
) -> None:
    """End the call: status, reason, ``ended_at``, ``duration_s``; usage/cost/error when given."""
    row = await session.get(CallRow, call_id)
    if row is None:
        raise StoreError(f"no call {call_id!r}")
    ended = ended_at or utcnow()
    # Billable time runs from the answer; a completed call nobody marked answered counts whole.
    start = row.answered_at or (row.created_at if str(status) == "completed" else None)
    fields: dict[str, Any] = {
        "status": status,
        "end_reason": end_reason,
        "ended_at": ended,
        "duration_s": max(0.0, (ended - start).total_seconds()) if start else 0.0,
    }
    # None leaves what was recorded earlier (e.g. usage set by record_update) in place.
    if usage is not None:
        fields["usage"] = usage
    if cost is not None:
        fields["cost"] = cost
    if error is not None:
        fields["error"] = error
    for key, value in _columns(fields).items():
        setattr(row, key, value)


async def add_transcript(
    session: AsyncSession,
    call_id: str,
    role: str,
    text: str,
    *,
    started_ms: int | None = None,
    ended_ms: int | None = None,
    interrupted: bool = False,
    seq: int | None = None,
) -> None:
    if role not in ("caller", "agent"):
        raise StoreError(f"transcript role must be 'caller' or 'agent', not {role!r}")
    if seq is None:
        seq = await _next_seq(session, TranscriptRow, call_id)
    session.add(
        TranscriptRow(
            call_id=call_id,
            seq=seq,
            role=role,
            text=text,
            started_ms=started_ms,
            ended_ms=ended_ms,
            interrupted=interrupted,
        )
    )


async def add_tool_call(
    session: AsyncSession,
    call_id: str,
    name: str,
    arguments: Mapping[str, Any] | None,
    result: Mapping[str, Any] | None,
    *,
    ok: bool,
    duration_ms: float,
    provider_call_id: str | None = None,
    at: datetime | None = None,
    seq: int | None = None,
) -> None:
    if seq is None:
        seq = await _next_seq(session, ToolCallRow, call_id)
    session.add(
        ToolCallRow(
            call_id=call_id,
            seq=seq,
            name=name,
            provider_call_id=provider_call_id,
            arguments=dict(arguments or {}),
            result=dict(result or {}),
            ok=ok,
            duration_ms=duration_ms,
            at=at or utcnow(),
        )
    )


async def add_timeline(
    session: AsyncSession,
    call_id: str,
    kind: str,
    data: Mapping[str, Any] | None = None,
    *,
    at: datetime | None = None,
    seq: int | None = None,
) -> None:
    if seq is None:
        seq = await _next_seq(session, TimelineRow, call_id)
    session.add(
        TimelineRow(call_id=call_id, seq=seq, at=at or utcnow(), kind=kind, data=dict(data or {}))
    )


async def add_turn_latency(
    session: AsyncSession, call_id: str, turn: int, latency_ms: float
) -> None:
    session.add(TurnLatencyRow(call_id=call_id, turn=turn, latency_ms=latency_ms))


def row_to_record(row: CallRow) -> CallRecord:
    """The frozen :class:`CallRecord` of a ``calls`` row."""
    usage = None
    if row.usage:
        known = set(Usage.__slots__)
        usage = Usage(**{k: v for k, v in row.usage.items() if k in known})
    return CallRecord(
        id=row.id,
        status=row.status,
        created_at=row.created_at,
        carrier=row.carrier,
        carrier_call_id=row.carrier_call_id,
        direction=row.direction,
        provider=row.provider,
        model=row.model,
        agent=row.agent,
        from_number=row.from_number,
        to_number=row.to_number,
        end_reason=row.end_reason,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        duration_s=row.duration_s,
        usage=usage,
        cost=CostBreakdown.from_dict(row.cost) if row.cost else None,
        cost_total=row.cost_total,
        error=row.error,
        extra=dict(row.extra or {}),
    )
