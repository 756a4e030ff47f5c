"""The webhook outbox: events written with the record changes they report, read by a worker.

Writing: :class:`~switchboard.store.ops.EnqueueEvent` ops go through ``writes.apply_batch``
like every other write, so an event is committed in the transaction of the change it reports
(:func:`enqueue` adds its rows). Reading: :class:`Outbox` is what a delivery worker
(``integrations/delivery.py``) and the API use.

Theory of operation. A row is one event for one URL. A URL receives a call's events in order:
only the *head* of each (call, URL) chain, its oldest row still ``pending``, may be sent, so an
event that keeps failing holds the later ones of its call back until it is delivered or given
up (``failed``). Several workers (nodes) may share the table: one sends a row only after
*claiming* it, an ``UPDATE`` that sets ``lease_until`` and succeeds for one of them; a worker
killed mid-send leaves a lease that lapses, and the row is sent again (receivers de-duplicate
on ``webhook-id``)::

    pending ──claim──▶ (leased) ──2xx──▶ delivered
       ▲                  │
       └─ next_attempt ◀──┤ error, before the give-up time
                          └─ error, after it ──▶ failed ──POST …/retry──▶ pending
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from switchboard.errors import StoreError
from switchboard.store import ops, queries
from switchboard.store.engine import transaction
from switchboard.store.models import OutboxRow
from switchboard.store.records import CallDetail

__all__ = [
    "DELIVERY_STATUSES",
    "Delivery",
    "Outbox",
    "enqueue",
    "event_body",
    "record_data",
]

#: What a delivery's ``status`` may be.
DELIVERY_STATUSES = ("pending", "delivered", "failed")
_ERROR_CHARS = 500  # what is kept of a receiver's error (the body is the receiver's, unbounded)


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    # An event must never fail the record change it is written with: a value JSON cannot
    # carry (a tool's odd argument) is sent as its text.
    return str(value)


def event_body(event_type: str, at: datetime, data: Mapping[str, Any]) -> str:
    """The request body of an event: Standard Webhooks' ``{"type", "timestamp", "data"}``."""
    payload = {"type": event_type, "timestamp": at.isoformat(), "data": dict(data)}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def record_data(detail: CallDetail) -> dict[str, Any]:
    """A call as ``call.ended`` reports it: outcome, duration, transcript, tool calls, cost."""
    r = detail.record
    data: dict[str, Any] = {
        "call_id": r.id,
        "status": r.status,
        "outcome": r.end_reason,
        "direction": r.direction,
        "carrier": r.carrier,
        "carrier_call_id": r.carrier_call_id,
        "from": r.from_number,
        "to": r.to_number,
        "agent": r.agent,
        "provider": r.provider,
        "model": r.model,
        "created_at": r.created_at,
        "answered_at": r.answered_at,
        "ended_at": r.ended_at,
        "duration_s": r.duration_s,
        "usage": r.usage.as_dict() if r.usage else None,
        "cost": r.cost.as_dict() if r.cost else None,
        "error": r.error,
        "transcript": [
            {"role": t.role, "text": t.text, "at_ms": t.started_ms, "interrupted": t.interrupted}
            for t in detail.transcript
        ],
        "tool_calls": [
            {
                "name": t.name,
                "arguments": t.arguments,
                "result": t.result,
                "ok": t.ok,
                "duration_ms": t.duration_ms,
                "at": t.at,
            }
            for t in detail.tool_calls
        ],
    }
    recording = r.extra.get("recording_url")  # set on the record by whatever recorded the call
    if isinstance(recording, str):
        data["recording_url"] = recording
    return data


async def enqueue(session: AsyncSession, op: ops.EnqueueEvent) -> None:
    """Add ``op``'s rows through an open session (``writes.apply`` calls this)."""
    if not op.urls:
        return
    data = dict(op.data)
    if op.with_record:
        detail = await queries.call_detail(session, op.call_id)
        if detail is None:
            raise StoreError(f"no call {op.call_id!r}")
        data = {**record_data(detail), **data}
    body = event_body(op.type, op.at, data)
    current = await session.scalar(
        select(func.max(OutboxRow.seq)).where(OutboxRow.call_id == op.call_id)
    )
    seq = 0 if current is None else int(current) + 1
    for url in op.urls:
        session.add(
            OutboxRow(
                event_id=op.event_id,
                event_type=op.type,
                call_id=op.call_id,
                seq=seq,
                url=url,
                body=body,
                status="pending",
                attempts=0,
                created_at=op.at,
                next_attempt_at=op.at,
            )
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one URL, as the outbox holds it."""

    id: int
    event_id: str
    event_type: str
    call_id: str
    seq: int
    url: str
    body: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None


def _delivery(row: OutboxRow) -> Delivery:
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        call_id=row.call_id,
        seq=row.seq,
        url=row.url,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        delivered_at=row.delivered_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
    )


class Outbox:
    """Reads and state changes of the outbox (``store.outbox``); every time is passed in.

    Args:
        sessions: the store's session factory.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self._sessions, "webhook outbox")

    async def claim_due(self, now: datetime, *, limit: int, lease_s: float) -> list[Delivery]:
        """Claim up to ``limit`` chain heads due by ``now`` for ``lease_s`` (oldest due first)."""
        earlier = aliased(OutboxRow)
        head = ~exists().where(
            earlier.call_id == OutboxRow.call_id,
            earlier.url == OutboxRow.url,
            earlier.status == "pending",
            earlier.id < OutboxRow.id,
        )
        free = or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until <= now)
        due = and_(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now, free)
        query = (
            select(OutboxRow.id)
            .where(due, head)
            .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(limit)
        )
        claimed: list[Delivery] = []
        until = now + timedelta(seconds=lease_s)
        async with self._transaction() as session:
            for row_id in list(await session.scalars(query)):
                # Whoever updates the row first has it; another worker's UPDATE matches nothing.
                result = await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id == row_id, due)
                    .values(lease_until=until)
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0) == 1:
                    row = await session.get(OutboxRow, row_id)
                    if row is not None:
                        claimed.append(_delivery(row))
        return claimed

    async def next_due(self) -> datetime | None:
        """When the earliest pending row is due (None when nothing is pending)."""
        async with self._transaction() as session:
            return await session.scalar(
                select(func.min(OutboxRow.next_attempt_at)).where(OutboxRow.status == "pending")
            )

    async def delivered(self, delivery_id: int, now: datetime, status_code: int) -> None:
        """Record a successful attempt."""
        await self._finish(
            delivery_id,
            status="delivered",
            delivered_at=now,
            last_attempt_at=now,
            last_status_code=status_code,
            last_error=None,
        )

    async def attempt_failed(
        self,
        delivery_id: int,
        now: datetime,
        *,
        error: str,
        status_code: int | None,
        retry_at: datetime | None,
    ) -> None:
        """Record a failed attempt: pending again at ``retry_at``, or ``failed`` when None."""
        values: dict[str, Any] = {
            "last_attempt_at": now,
            "last_status_code": status_code,
            "last_error": error[:_ERROR_CHARS],
        }
        if retry_at is None:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = retry_at
        await self._finish(delivery_id, **values)

    async def _finish(self, delivery_id: int, **values: Any) -> None:
        async with self._transaction() as session:
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == delivery_id)
                .values(attempts=OutboxRow.attempts + 1, lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )

    async def retry(self, delivery_id: int, now: datetime) -> Delivery | None:
        """Make a delivery pending and due now (after it failed, or to resend it); None if
        unknown. A delivered one is sent again with the same ``webhook-id``."""
        async with self._transaction() as session:
            row = await session.get(OutboxRow, delivery_id)
            if row is None:
                return None
            row.status = "pending"
            row.next_attempt_at = now
            row.lease_until = None
            row.delivered_at = None
            return _delivery(row)

    async def get(self, delivery_id: int) -> Delivery | None:
        """One delivery, or None."""
        async with self._transaction() as session:
            row = await session.get(OutboxRow, delivery_id)
            return _delivery(row) if row is not None else None

    async def deliveries(
        self,
        *,
        status: str | None = None,
        call_id: str | None = None,
        event_type: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> Sequence[Delivery]:
        """Deliveries newest first, filtered; ``before_id`` pages back from an id.

        Raises:
            StoreError: an unknown status.
        """
        if status is not None and status not in DELIVERY_STATUSES:
            raise StoreError(f"status must be one of {', '.join(DELIVERY_STATUSES)}")
        query = select(OutboxRow)
        for column, value in (
            (OutboxRow.status, status),
            (OutboxRow.call_id, call_id),
            (OutboxRow.event_type, event_type),
        ):
            if value is not None:
                query = query.where(column == value)
        if before_id is not None:
            query = query.where(OutboxRow.id < before_id)
        query = query.order_by(OutboxRow.id.desc()).limit(limit)
        async with self._transaction() as session:
            return [_delivery(row) for row in await session.scalars(query)]
