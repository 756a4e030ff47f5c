"""The queue of post-call analyses, kept on the call rows (``calls.analysis_status``).

A call whose agent asks for analysis gets ``pending`` with its request when it ends (a
:class:`~switchboard.store.ops.RequestAnalysis` in the batch that finalises the call), so the
work survives a restart. A worker (``integrations/analysis_worker.py``) claims due calls the way
the outbox claims deliveries: an ``UPDATE`` to ``running`` with a lease in ``analysis_due_at``
that only one worker wins; a worker that dies leaves a lease that lapses and the analysis is
taken again. The result is written with :class:`~switchboard.store.ops.SetAnalysis` (and the
``call.analyzed`` event) in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.store.engine import transaction
from switchboard.store.models import CallRow

__all__ = ["AnalysisJob", "AnalysisQueue"]


@dataclass(frozen=True, slots=True)
class AnalysisJob:
    """A claimed analysis: the call and the request stored when it ended."""

    call_id: str
    request: Mapping[str, Any]


class AnalysisQueue:
    """Claims due analyses (``store.analyses``); every time is passed in.

    Args:
        sessions: the store's session factory.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self._sessions, "analysis queue")

    async def claim_due(self, now: datetime, *, limit: int, lease_s: float) -> list[AnalysisJob]:
        """Claim up to ``limit`` analyses due by ``now`` (or whose lease lapsed) for ``lease_s``."""
        due = and_(
            or_(CallRow.analysis_status == "pending", CallRow.analysis_status == "running"),
            CallRow.analysis_due_at <= now,
        )
        query = select(CallRow.id).where(due).order_by(CallRow.analysis_due_at).limit(limit)
        jobs: list[AnalysisJob] = []
        async with self._transaction() as session:
            for call_id in list(await session.scalars(query)):
                result = await session.execute(
                    update(CallRow)
                    .where(CallRow.id == call_id, due)
                    .values(
                        analysis_status="running",
                        analysis_due_at=now + timedelta(seconds=lease_s),
                    )
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0) != 1:
                    continue  # another worker took it
                row = await session.get(CallRow, call_id)
                request = (row.analysis or {}).get("request") if row is not None else None
                jobs.append(AnalysisJob(call_id, dict(request or {})))
        return jobs

    async def next_due(self) -> datetime | None:
        """When the earliest pending (or leased) analysis is due; None when there is none."""
        async with self._transaction() as session:
            return await session.scalar(
                select(CallRow.analysis_due_at)
                .where(CallRow.analysis_status.in_(("pending", "running")))
                .order_by(CallRow.analysis_due_at)
                .limit(1)
            )
