"""The one write path: :func:`apply_batch` writes a batch of :mod:`~switchboard.store.ops` in
one transaction.

Both :meth:`CallStore.create_call` (a batch of one, awaited) and the background
:class:`~switchboard.store.BatchWriter` (everything a call recorded in the last interval) come
through here, so every write has one spelling. Whatever must commit or fail together with the
call records belongs inside :func:`apply_batch`'s transaction; what to do when the database is
unreachable belongs to the caller (the writer keeps its queue).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.cost import CostBreakdown
from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.store import ops, outbox
from switchboard.store.models import (
    CallRow,
    TimelineRow,
    ToolCallRow,
    TranscriptRow,
    TurnLatencyRow,
)
from switchboard.store.records import normalise_status

__all__ = ["apply", "apply_batch"]

_SeqRow = type[TranscriptRow] | type[ToolCallRow] | type[TimelineRow]


async def apply_batch(sessions: async_sessionmaker[AsyncSession], batch: Sequence[ops.Op]) -> None:
    """Apply ``batch`` in order in ONE transaction: all of it is committed, or none.

    Raises:
        StoreError: an op cannot apply (e.g. an update of an unknown call).
        sqlalchemy.exc.SQLAlchemyError: the database refused or could not be reached.
    """
    async with sessions() as session, session.begin():
        for op in batch:
            await apply(session, op)


async def apply(session: AsyncSession, op: ops.Op) -> None:
    """Apply one op through an open session; the caller owns the transaction."""
    match op:
        case ops.CreateCall():
            session.add(
                CallRow(
                    id=op.call_id,
                    carrier=op.carrier,
                    carrier_call_id=op.carrier_call_id,
                    direction=op.direction,
                    provider=op.provider,
                    providers=[op.provider] if op.provider else None,
                    model=op.model,
                    agent=op.agent,
                    from_number=op.from_number,
                    to_number=op.to_number,
                    status=op.status,
                    created_at=op.created_at,
                    extra=dict(op.extra),
                )
            )
        case ops.UpdateCall():
            await _update_call(session, op)
        case ops.MergeExtra():
            await _merge_extra(session, op)
        case ops.FinalizeCall():
            await _finalize_call(session, op)
        case ops.AddTranscript():
            session.add(
                TranscriptRow(
                    call_id=op.call_id,
                    seq=await _next_seq(session, TranscriptRow, op.call_id),
                    role=op.role,
                    text=op.text,
                    started_ms=op.started_ms,
                    ended_ms=op.ended_ms,
                    interrupted=op.interrupted,
                )
            )
        case ops.AddToolCall():
            session.add(
                ToolCallRow(
                    call_id=op.call_id,
                    seq=await _next_seq(session, ToolCallRow, op.call_id),
                    name=op.name,
                    provider_call_id=op.provider_call_id,
                    arguments=dict(op.arguments),
                    result=dict(op.result),
                    ok=op.ok,
                    duration_ms=op.duration_ms,
                    at=op.at,
                )
            )
        case ops.AddTimeline():
            session.add(
                TimelineRow(
                    call_id=op.call_id,
                    seq=await _next_seq(session, TimelineRow, op.call_id),
                    at=op.at,
                    kind=op.kind,
                    data=dict(op.data),
                )
            )
        case ops.AddTurnLatency():
            session.add(TurnLatencyRow(call_id=op.call_id, turn=op.turn, latency_ms=op.latency_ms))
        case ops.EnqueueEvent():
            await outbox.enqueue(session, op)
        case ops.RequestAnalysis():
            await _set_analysis(
                session,
                op.call_id,
                status="pending",
                analysis={"status": "pending", "request": dict(op.request)},
                due_at=op.due_at,
            )
        case ops.SetAnalysis():
            await _set_analysis(
                session,
                op.call_id,
                status=op.status,
                analysis={**op.analysis, "status": op.status},
                due_at=op.due_at,
            )
        case ops.Group():
            for inner in op.ops:
                await apply(session, inner)


async def _next_seq(session: AsyncSession, model: _SeqRow, call_id: str) -> int:
    current = await session.scalar(select(func.max(model.seq)).where(model.call_id == call_id))
    return 0 if current is None else int(current) + 1


def _columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for call fields: usage and cost as JSON dicts, ``cost_total`` beside cost."""
    out = dict(fields)
    if isinstance(out.get("providers"), tuple):
        out["providers"] = list(out["providers"])
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


async def _update_call(session: AsyncSession, op: ops.UpdateCall) -> None:
    values = _columns(op.fields)
    if not values:
        return
    result = await session.execute(update(CallRow).where(CallRow.id == op.call_id).values(**values))
    if getattr(result, "rowcount", 1) == 0:
        raise StoreError(f"no call {op.call_id!r}")


async def _merge_extra(session: AsyncSession, op: ops.MergeExtra) -> None:
    current = await session.scalar(select(CallRow.extra).where(CallRow.id == op.call_id))
    if current is None and not await session.scalar(
        select(func.count()).select_from(CallRow).where(CallRow.id == op.call_id)
    ):
        raise StoreError(f"no call {op.call_id!r}")
    extra = {**(current or {}), **op.values}
    extra = {k: v for k, v in extra.items() if v is not None}
    await session.execute(update(CallRow).where(CallRow.id == op.call_id).values(extra=extra))


async def _set_analysis(
    session: AsyncSession,
    call_id: str,
    *,
    status: str,
    analysis: dict[str, Any],
    due_at: datetime | None,
) -> None:
    result = await session.execute(
        update(CallRow)
        .where(CallRow.id == call_id)
        .values(analysis=analysis, analysis_status=status, analysis_due_at=due_at)
    )
    if getattr(result, "rowcount", 1) == 0:
        raise StoreError(f"no call {call_id!r}")


async def _finalize_call(session: AsyncSession, op: ops.FinalizeCall) -> None:
    row = await session.get(CallRow, op.call_id)
    if row is None:
        raise StoreError(f"no call {op.call_id!r}")
    # Billable time runs from the answer; a completed call nobody marked answered counts whole.
    start = row.answered_at or (row.created_at if op.status == "completed" else None)
    fields: dict[str, Any] = {
        "status": op.status,
        "end_reason": op.end_reason,
        "ended_at": op.ended_at,
        "duration_s": max(0.0, (op.ended_at - start).total_seconds()) if start else 0.0,
    }
    # None leaves what was recorded earlier (e.g. usage set by record_update) in place.
    if op.usage is not None:
        fields["usage"] = op.usage
    if op.cost is not None:
        fields["cost"] = op.cost
    if op.error is not None:
        fields["error"] = op.error
    for key, value in _columns(fields).items():
        setattr(row, key, value)
