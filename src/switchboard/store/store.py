"""``CallStore``: call records on SQLAlchemy 2 async (SQLite by default, PostgreSQL by URL).

::

    store = CallStore.from_settings(settings)     # SWITCHBOARD_DATABASE_URL
    await store.migrate()                          # Alembic upgrade to head (packaged migrations)
    call = await store.create_call(carrier="twilio", carrier_call_id="CA..", ...)
    recorder = store.recorder(call.id)             # non-blocking writes during the call
    recorder.record_transcript("caller", "hello")
    await recorder.finalize("completed", "caller_hung_up", usage, cost)
    detail = await store.get_call(call.id)
    await store.aclose()

Every write is an op (``ops.py``, writes as data) applied by ``writes.apply_batch`` in one
transaction: ``create_call`` applies its op at once; a recorder queues its ops for the
store's :class:`BatchWriter`. Reads are built in ``queries.py``; URLs and engines in
``engine.py``. ``schema=`` puts every table in a PostgreSQL schema (created by
:meth:`CallStore.migrate`), which keeps parallel test runs apart.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from switchboard.config import Settings
from switchboard.errors import StoreError
from switchboard.store import ops, queries
from switchboard.store.analyses import AnalysisQueue
from switchboard.store.engine import connect, fill_pool, normalise_database_url, upgrade
from switchboard.store.models import CallRow
from switchboard.store.outbox import Outbox
from switchboard.store.recorder import BatchWriter, CallRecorder
from switchboard.store.records import CallDetail, CallPage, CallRecord, CallStatus, UsageRow
from switchboard.store.spool import Spool
from switchboard.store.writer import unreachable
from switchboard.store.writes import apply_batch

__all__ = ["MAX_PAGE", "CallStore", "normalise_database_url"]

logger = logging.getLogger(__name__)

MAX_PAGE = 1000


def _database_key(url: str, schema: str | None) -> str:
    """A short name for one database (and schema) that says nothing about its credentials."""
    return hashlib.sha256(f"{url}|{schema or ''}".encode()).hexdigest()[:12]


class CallStore:
    """Call records: create, record through a batching writer during the call, read, usage sums.

    Args:
        url: database URL (see :func:`normalise_database_url`).
        schema: PostgreSQL schema for the tables (created by ``migrate``); ignored for SQLite.
        flush_interval_s: longest a recorded item waits before its batch is committed.
        max_pending: recorded items allowed to wait in memory; beyond it they are spooled to
            ``spool_dir`` (without one they are dropped, counted).
        spool_dir: where recorded items wait on disk while the database is unreachable, and
            where a previous run's are found (see :mod:`switchboard.store.writer`).
        echo: log SQL (debugging).
    """

    def __init__(
        self,
        url: str = "sqlite+aiosqlite:///switchboard.db",
        *,
        schema: str | None = None,
        flush_interval_s: float = 0.5,
        max_pending: int = 10_000,
        spool_dir: str | os.PathLike[str] | None = None,
        echo: bool = False,
    ) -> None:
        database = connect(url, schema=schema, echo=echo)
        self._database = database
        self.url = database.url
        self.dialect = database.dialect
        self.schema = database.schema
        self.engine: AsyncEngine = database.engine
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.writer = BatchWriter(
            self._sessions,
            flush_interval_s=flush_interval_s,
            max_pending=max_pending,
            spool=Spool(spool_dir, database=_database_key(self.url, self.schema))
            if spool_dir
            else None,
        )
        #: Webhook deliveries (written by ``EnqueueEvent`` ops; read and updated by a worker).
        self.outbox = Outbox(self._sessions)
        #: Post-call analyses waiting for a worker.
        self.analyses = AnalysisQueue(self._sessions)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> CallStore:
        """The store at ``settings.database_url`` (``SWITCHBOARD_DATABASE_URL``), spooling to
        ``SWITCHBOARD_STORE_SPOOL_DIR``."""
        options.setdefault("spool_dir", settings.store_spool_dir or None)
        return cls(settings.database_url, **options)

    async def __aenter__(self) -> CallStore:
        await self.migrate()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def migrate(self) -> None:
        """Bring the schema up to date (Alembic ``upgrade head``); safe to run at every start."""
        try:
            async with self.engine.begin() as conn:
                if self.schema:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                await conn.run_sync(upgrade)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot migrate the call store: {exc}") from exc
        await fill_pool(self._database)
        logger.info("call store ready (%s)", self.dialect)
        self.writer.resume()  # writes a previous run spooled during an outage

    async def aclose(self) -> None:
        """Flush pending records, stop the writer and close connections."""
        await self.writer.aclose()
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise StoreError unless the database answers (``GET /readyz``)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"the call store does not answer: {type(exc).__name__}") from exc

    def recorder(self, call_id: str) -> CallRecorder:
        """A non-blocking :class:`CallRecorder` for one call."""
        return CallRecorder(self.writer, call_id)

    # -- writes ----------------------------------------------------------------------------------
    async def create_call(
        self,
        *,
        carrier: str | None,
        carrier_call_id: str | None,
        from_number: str | None,
        to_number: str | None,
        direction: str = "inbound",
        agent: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        status: str = CallStatus.RINGING,
        call_id: str | None = None,
        created_at: datetime | None = None,
        extra: dict[str, Any] | None = None,
        also: Sequence[ops.Op] = (),
    ) -> CallRecord:
        """Create a call record (``call_id`` generated when omitted), awaited, and return it.

        ``also`` are ops committed in the same transaction (the ``call.started`` event, made
        with the id given here). Everything after creation is written through :meth:`recorder`.

        Raises:
            StoreError: the record could not be written.
        """
        defaults: dict[str, Any] = {}
        if call_id is not None:
            defaults["call_id"] = call_id
        if created_at is not None:
            defaults["created_at"] = created_at
        op = ops.CreateCall(
            carrier=carrier,
            carrier_call_id=carrier_call_id,
            from_number=from_number,
            to_number=to_number,
            direction=direction,
            agent=agent,
            provider=provider,
            model=model,
            status=status,
            extra=extra or {},
            **defaults,
        )
        batch = [op, *also]
        try:
            await apply_batch(self._sessions, batch)
        except SQLAlchemyError as exc:
            if not unreachable(exc):
                raise StoreError(f"call store write failed: {_describe(exc)}") from exc
            # Busy ("database is locked") or down: the record waits in the writer's queue (and
            # spool) like everything recorded after it, instead of being lost with the call.
            logger.warning(
                "call %s: the call store is busy or unreachable (%s): its record is queued",
                op.call_id,
                _describe(exc),
            )
            for queued in batch:
                self.writer.submit(queued)
        return op.record()

    async def write(self, batch: Sequence[ops.Op]) -> None:
        """Apply ``batch`` now, in one transaction (awaited; the recorder queues instead).

        Raises:
            StoreError: an op cannot apply, or the database refused or is unreachable.
        """
        try:
            await apply_batch(self._sessions, batch)
        except SQLAlchemyError as exc:
            raise StoreError(f"call store write failed: {_describe(exc)}") from exc

    # -- reads -----------------------------------------------------------------------------------
    async def get_call(self, call_id: str) -> CallDetail | None:
        """The call with its transcript, tool calls, timeline and latencies; None if unknown."""
        try:
            async with self._sessions() as s:
                if self.dialect == "postgresql":  # one snapshot for the row and its children
                    await s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                return await queries.call_detail(s, call_id)
        except SQLAlchemyError as exc:
            raise StoreError(f"call store read failed: {_describe(exc)}") from exc

    async def find_by_carrier_id(self, carrier: str, carrier_call_id: str) -> CallRecord | None:
        """The newest call with this carrier call id (Twilio CallSid, Telnyx call_control_id)."""
        query = (
            select(CallRow)
            .where(CallRow.carrier == carrier, CallRow.carrier_call_id == carrier_call_id)
            .order_by(CallRow.created_at.desc(), CallRow.id.desc())
            .limit(1)
        )
        try:
            async with self._sessions() as s:
                row = await s.scalar(query)
        except SQLAlchemyError as exc:
            raise StoreError(f"call store read failed: {_describe(exc)}") from exc
        return queries.row_to_record(row) if row else None

    async def list_calls(
        self,
        *,
        status: str | None = None,
        carrier: str | None = None,
        provider: str | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        outcome: str | None = None,
        number: str | None = None,
        text: str | None = None,
    ) -> CallPage:
        """Calls newest first, filtered; ``since`` inclusive, ``until`` exclusive (created_at).

        ``outcome`` is an end reason, ``number`` part of the caller's or dialled number, ``text``
        part of a transcript line (either case).

        Raises:
            StoreError: ``limit`` outside 1..MAX_PAGE or an invalid ``cursor``.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise StoreError(f"limit must be between 1 and {MAX_PAGE}")
        query = queries.calls_query(
            status=status,
            carrier=carrier,
            provider=provider,
            agent=agent,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            outcome=outcome,
            number=number,
            text=text,
        )
        try:
            async with self._sessions() as s:
                rows = list(await s.scalars(query))
        except SQLAlchemyError as exc:
            raise StoreError(f"call store read failed: {_describe(exc)}") from exc
        items = tuple(queries.row_to_record(r) for r in rows[:limit])
        more = len(rows) > limit
        return CallPage(items=items, next_cursor=queries.encode_cursor(items[-1]) if more else None)

    async def usage_summary(
        self,
        *,
        group_by: Sequence[str] = ("day", "provider"),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UsageRow]:
        """Calls, minutes and cost summed per group (any of day, provider, carrier, agent).

        Days are UTC days of ``created_at``. Rows are ordered by the group keys.

        Raises:
            StoreError: an unknown group key.
        """
        keys = list(dict.fromkeys(group_by))
        query = queries.usage_query(keys, dialect=self.dialect, since=since, until=until)
        try:
            async with self._sessions() as s:
                result = (await s.execute(query)).mappings().all()
        except SQLAlchemyError as exc:
            raise StoreError(f"call store read failed: {_describe(exc)}") from exc
        return queries.usage_rows(result, keys)


def _describe(exc: SQLAlchemyError) -> str:
    """The error's kind and the driver's own words, without the statement and its parameters
    (callers' numbers) that SQLAlchemy's message carries."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    words = str(orig).splitlines()
    return f"{type(exc).__name__}: {words[0][:200] if words else type(orig).__name__}"
