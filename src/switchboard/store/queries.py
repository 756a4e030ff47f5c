"""The reads behind :class:`~switchboard.store.CallStore`: queries and rows → records.

Each function either builds a query or runs one through a session the store opened; the store
owns connections and turns database errors into :class:`~switchboard.errors.StoreError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.cost import CostBreakdown
from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.store.models import (
    CallRow,
    TimelineRow,
    ToolCallRow,
    TranscriptRow,
    TurnLatencyRow,
)
from switchboard.store.records import (
    CallDetail,
    CallRecord,
    TimelineEvent,
    ToolCallRecord,
    TranscriptEntry,
    TurnLatency,
    UsageRow,
    normalise_status,
)

__all__ = [
    "GROUP_KEYS",
    "call_detail",
    "calls_query",
    "decode_cursor",
    "encode_cursor",
    "row_to_record",
    "usage_query",
    "usage_rows",
]

GROUP_KEYS = ("day", "provider", "carrier", "agent")


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
        providers=tuple(row.providers or ((row.provider,) if row.provider else ())),
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
        analysis=_analysis(row),
    )


def _analysis(row: CallRow) -> dict[str, Any] | None:
    """The analysis as readers see it: while it waits, only its status (not the request)."""
    if row.analysis_status is None:
        return None
    if row.analysis_status in ("pending", "running"):
        return {"status": "pending"}
    return {**(row.analysis or {}), "status": row.analysis_status}


async def call_detail(session: AsyncSession, call_id: str) -> CallDetail | None:
    """The call with its transcript, tool calls, timeline and latencies; None if unknown."""
    row = await session.get(CallRow, call_id)
    if row is None:
        return None
    transcript = await session.scalars(
        select(TranscriptRow)
        .where(TranscriptRow.call_id == call_id)
        .order_by(TranscriptRow.seq, TranscriptRow.id)
    )
    tools = await session.scalars(
        select(ToolCallRow)
        .where(ToolCallRow.call_id == call_id)
        .order_by(ToolCallRow.seq, ToolCallRow.id)
    )
    timeline = await session.scalars(
        select(TimelineRow)
        .where(TimelineRow.call_id == call_id)
        .order_by(TimelineRow.seq, TimelineRow.id)
    )
    latencies = await session.scalars(
        select(TurnLatencyRow)
        .where(TurnLatencyRow.call_id == call_id)
        .order_by(TurnLatencyRow.turn, TurnLatencyRow.id)
    )
    return CallDetail(
        record=row_to_record(row),
        transcript=tuple(
            TranscriptEntry(t.seq, t.role, t.text, t.started_ms, t.ended_ms, t.interrupted)
            for t in transcript
        ),
        tool_calls=tuple(
            ToolCallRecord(
                t.seq,
                t.name,
                dict(t.arguments or {}),
                dict(t.result or {}),
                t.ok,
                t.duration_ms,
                t.at,
                t.provider_call_id,
            )
            for t in tools
        ),
        timeline=tuple(TimelineEvent(t.seq, t.at, t.kind, dict(t.data or {})) for t in timeline),
        latencies=tuple(TurnLatency(t.turn, t.latency_ms) for t in latencies),
    )


def encode_cursor(record: CallRecord) -> str:
    """An opaque cursor for the page after ``record`` (its ``created_at`` and id)."""
    raw = json.dumps([record.created_at.isoformat(), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, id)`` of a cursor. Raises StoreError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, call_id = json.loads(raw)
        return datetime.fromisoformat(created), str(call_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise StoreError(f"invalid cursor {cursor!r}") from exc


def calls_query(
    *,
    status: str | None,
    carrier: str | None,
    provider: str | None,
    agent: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
    outcome: str | None = None,
    number: str | None = None,
    text: str | None = None,
) -> Select[CallRow]:
    """Calls newest first, filtered, one more than ``limit`` (to tell whether a page follows).

    ``outcome`` is the end reason; ``number`` is part of the caller's or the dialled number;
    ``text`` is part of a transcript line (either case).
    """
    query = select(CallRow)
    if outcome is not None:
        query = query.where(CallRow.end_reason == outcome)
    if number is not None:
        query = query.where(
            or_(
                CallRow.from_number.contains(number, autoescape=True),
                CallRow.to_number.contains(number, autoescape=True),
            )
        )
    if text is not None:
        said = select(TranscriptRow.id).where(
            TranscriptRow.call_id == CallRow.id,
            func.lower(TranscriptRow.text).contains(text.lower(), autoescape=True),
        )
        query = query.where(said.exists())
    for column, value in (
        (CallRow.status, normalise_status(status) if status is not None else None),
        (CallRow.carrier, carrier),
        (CallRow.provider, provider),
        (CallRow.agent, agent),
    ):
        if value is not None:
            query = query.where(column == str(value))
    if since is not None:
        query = query.where(CallRow.created_at >= since)
    if until is not None:
        query = query.where(CallRow.created_at < until)
    if cursor:
        at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(CallRow.created_at < at, (CallRow.created_at == at) & (CallRow.id < last_id))
        )
    return query.order_by(CallRow.created_at.desc(), CallRow.id.desc()).limit(limit + 1)


def usage_query(
    keys: Sequence[str], *, dialect: str, since: datetime | None, until: datetime | None
) -> Select[Any]:
    """Calls, seconds and cost summed per group of ``keys`` (UTC days of ``created_at``).

    Raises:
        StoreError: an unknown group key.
    """
    unknown = [g for g in keys if g not in GROUP_KEYS]
    if unknown:
        raise StoreError(f"cannot group usage by {', '.join(unknown)}")
    if dialect == "postgresql":
        day = func.date(func.timezone("UTC", CallRow.created_at))
    else:
        day = func.date(CallRow.created_at)
    columns: dict[str, Any] = {
        "day": day,
        "provider": CallRow.provider,
        "carrier": CallRow.carrier,
        "agent": CallRow.agent,
    }
    group_cols = [columns[k].label(k) for k in keys]
    query = select(
        *group_cols,
        func.count(CallRow.id).label("calls"),
        func.coalesce(func.sum(CallRow.duration_s), 0.0).label("seconds"),
        func.coalesce(func.sum(CallRow.cost_total), 0.0).label("cost"),
    )
    if since is not None:
        query = query.where(CallRow.created_at >= since)
    if until is not None:
        query = query.where(CallRow.created_at < until)
    if group_cols:
        query = query.group_by(*group_cols).order_by(*group_cols)
    return query


def usage_rows(result: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[UsageRow]:
    """:class:`UsageRow` per result row of :func:`usage_query` (minutes and cost rounded)."""
    out: list[UsageRow] = []
    for row in result:
        values: dict[str, Any] = {k: row[k] for k in keys}
        if "day" in values and isinstance(values["day"], str):
            values["day"] = date.fromisoformat(values["day"])
        out.append(
            UsageRow(
                calls=int(row["calls"]),
                minutes=round(float(row["seconds"]) / 60.0, 4),
                cost=round(float(row["cost"]), 6),
                **values,
            )
        )
    return out
