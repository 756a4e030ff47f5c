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

URLs: ``sqlite+aiosqlite:///path.db`` (``sqlite:///`` is rewritten), ``postgresql+asyncpg://``
(``postgresql://`` / ``postgres://`` are rewritten to asyncpg). ``schema=`` puts every table in a
PostgreSQL schema (created by :meth:`CallStore.migrate`), which keeps parallel test runs apart.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, func, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from switchboard.config import Settings
from switchboard.cost import CostBreakdown
from switchboard.errors import StoreError
from switchboard.providers.base import Usage
from switchboard.store import ops
from switchboard.store.models import (
    CallRow,
    TimelineRow,
    ToolCallRow,
    TranscriptRow,
    TurnLatencyRow,
    utcnow,
)
from switchboard.store.recorder import BatchWriter, CallRecorder
from switchboard.store.records import (
    CallDetail,
    CallPage,
    CallRecord,
    CallStatus,
    TimelineEvent,
    ToolCallRecord,
    TranscriptEntry,
    TurnLatency,
    UsageRow,
    normalise_status,
)

__all__ = ["MAX_PAGE", "CallStore", "normalise_database_url"]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MAX_PAGE = 1000
GROUP_KEYS = ("day", "provider", "carrier", "agent")
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def normalise_database_url(url: str) -> str:
    """Rewrite sync driver URLs to their async drivers (``postgresql://`` → ``+asyncpg``...).

    Raises:
        StoreError: the URL is not SQLite or PostgreSQL.
    """
    for prefix in (
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise StoreError(
        "SWITCHBOARD_DATABASE_URL must be sqlite+aiosqlite:///FILE or postgresql+asyncpg://..., "
        f"not {url.split('://', 1)[0]}://..."
    )


def _upgrade(connection: Connection) -> None:
    # Alembic logs each plugin (on import) and migration step at INFO; at start-up that is
    # noise, so it is imported here, with its loggers quietened for the duration.
    alembic_logger = logging.getLogger("alembic")
    level = alembic_logger.level
    alembic_logger.setLevel(max(level, logging.WARNING))
    try:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    finally:
        alembic_logger.setLevel(level)


def _encode_cursor(record: CallRecord) -> str:
    raw = json.dumps([record.created_at.isoformat(), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, call_id = json.loads(raw)
        return datetime.fromisoformat(created), str(call_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise StoreError(f"invalid cursor {cursor!r}") from exc


class CallStore:
    """Call records: create/update/read, a batching writer for calls in progress, usage sums.

    Args:
        url: database URL (see :func:`normalise_database_url`).
        schema: PostgreSQL schema for the tables (created by ``migrate``); ignored for SQLite.
        flush_interval_s: longest a recorded item waits before its batch is committed.
        max_pending: recorded items allowed to wait; beyond it new ones are dropped (counted).
        echo: log SQL (debugging).
    """

    def __init__(
        self,
        url: str = "sqlite+aiosqlite:///switchboard.db",
        *,
        schema: str | None = None,
        flush_interval_s: float = 0.5,
        max_pending: int = 10_000,
        echo: bool = False,
    ) -> None:
        self.url = normalise_database_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise StoreError(f"invalid database URL: {exc}") from exc
        self.dialect = parsed.get_backend_name()
        if schema is not None and not _SCHEMA_RE.match(schema):
            raise StoreError(f"invalid schema name {schema!r}")
        self.schema = schema if self.dialect == "postgresql" else None
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "postgresql" and self.schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": self.schema}}
        memory = self.dialect == "sqlite" and parsed.database in (None, "", ":memory:")
        if memory:
            kwargs["poolclass"] = StaticPool
        elif self.dialect == "sqlite" and parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(wal=not memory))
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.writer = BatchWriter(
            self._sessions, flush_interval_s=flush_interval_s, max_pending=max_pending
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> CallStore:
        """The store at ``settings.database_url`` (``SWITCHBOARD_DATABASE_URL``)."""
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
                await conn.run_sync(_upgrade)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot migrate the call store: {exc}") from exc
        logger.info("call store ready (%s)", self.dialect)

    async def aclose(self) -> None:
        """Flush pending records, stop the writer and close connections."""
        await self.writer.aclose()
        await self.engine.dispose()

    def recorder(self, call_id: str) -> CallRecorder:
        """A non-blocking :class:`CallRecorder` for one call."""
        return CallRecorder(self.writer, call_id)

    # -- writes ----------------------------------------------------------------------------------
    async def _run(self, op: ops.Op) -> None:
        try:
            async with self._sessions() as session, session.begin():
                await op(session)
        except SQLAlchemyError as exc:
            raise StoreError(f"call store write failed: {exc}") from exc

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
    ) -> CallRecord:
        """Create a call record (``call_id`` generated when omitted) and return it."""
        row = CallRow(
            id=call_id or f"call_{uuid.uuid4().hex}",
            carrier=carrier,
            carrier_call_id=carrier_call_id,
            direction=str(direction),
            provider=provider,
            model=model,
            agent=agent,
            from_number=from_number,
            to_number=to_number,
            status=normalise_status(status),
            created_at=created_at or utcnow(),
            extra=dict(extra or {}),
        )

        async def insert(session: AsyncSession) -> None:
            session.add(row)

        await self._run(insert)
        return ops.row_to_record(row)

    async def update_call(self, call_id: str, **fields: Any) -> None:
        """Set call fields (``status``, ``answered_at``, ``provider``, ``usage``, ``cost``...).

        Raises:
            StoreError: unknown field or unknown call.
        """
        await self._run(lambda s: ops.update_call(s, call_id, fields))

    async def add_transcript(
        self,
        call_id: str,
        role: str,
        text: str,
        *,
        started_ms: int | None = None,
        ended_ms: int | None = None,
        interrupted: bool = False,
    ) -> None:
        """Append an utterance (role ``"caller"`` or ``"agent"``)."""
        await self._run(
            lambda s: ops.add_transcript(
                s,
                call_id,
                role,
                text,
                started_ms=started_ms,
                ended_ms=ended_ms,
                interrupted=interrupted,
            )
        )

    async def add_tool_call(
        self,
        call_id: str,
        name: str,
        arguments: dict[str, Any] | None,
        result: dict[str, Any] | None,
        *,
        ok: bool,
        duration_ms: float,
        provider_call_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append a tool invocation."""
        await self._run(
            lambda s: ops.add_tool_call(
                s,
                call_id,
                name,
                arguments,
                result,
                ok=ok,
                duration_ms=duration_ms,
                provider_call_id=provider_call_id,
                at=at,
            )
        )

    async def add_timeline(
        self,
        call_id: str,
        kind: str,
        data: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Append a timeline event."""
        await self._run(lambda s: ops.add_timeline(s, call_id, kind, data, at=at))

    async def add_turn_latency(self, call_id: str, turn: int, latency_ms: float) -> None:
        """Record one turn's latency."""
        await self._run(lambda s: ops.add_turn_latency(s, call_id, turn, latency_ms))

    async def finalize(
        self,
        call_id: str,
        status: str,
        end_reason: str | None,
        usage: Usage | None = None,
        cost: CostBreakdown | None = None,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        """End a call: status, reason, usage, cost, ``ended_at`` and billable ``duration_s``."""
        await self._run(
            lambda s: ops.finalize_call(
                s,
                call_id,
                status=str(status),
                end_reason=end_reason,
                usage=usage,
                cost=cost,
                error=error,
                ended_at=ended_at,
            )
        )

    # -- reads -----------------------------------------------------------------------------------
    async def get_call(self, call_id: str) -> CallDetail | None:
        """The call with its transcript, tool calls, timeline and latencies; None if unknown."""
        try:
            async with self._sessions() as s:
                if self.dialect == "postgresql":  # one snapshot for the row and its children
                    await s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                row = await s.get(CallRow, call_id)
                if row is None:
                    return None
                transcript = await s.scalars(
                    select(TranscriptRow)
                    .where(TranscriptRow.call_id == call_id)
                    .order_by(TranscriptRow.seq, TranscriptRow.id)
                )
                tools = await s.scalars(
                    select(ToolCallRow)
                    .where(ToolCallRow.call_id == call_id)
                    .order_by(ToolCallRow.seq, ToolCallRow.id)
                )
                timeline = await s.scalars(
                    select(TimelineRow)
                    .where(TimelineRow.call_id == call_id)
                    .order_by(TimelineRow.seq, TimelineRow.id)
                )
                latencies = await s.scalars(
                    select(TurnLatencyRow)
                    .where(TurnLatencyRow.call_id == call_id)
                    .order_by(TurnLatencyRow.turn, TurnLatencyRow.id)
                )
                return CallDetail(
                    record=ops.row_to_record(row),
                    transcript=tuple(
                        TranscriptEntry(
                            t.seq, t.role, t.text, t.started_ms, t.ended_ms, t.interrupted
                        )
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
                    timeline=tuple(
                        TimelineEvent(t.seq, t.at, t.kind, dict(t.data or {})) for t in timeline
                    ),
                    latencies=tuple(TurnLatency(t.turn, t.latency_ms) for t in latencies),
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"call store read failed: {exc}") from exc

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
            raise StoreError(f"call store read failed: {exc}") from exc
        return ops.row_to_record(row) if row else None

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
    ) -> CallPage:
        """Calls newest first, filtered; ``since`` inclusive, ``until`` exclusive (created_at).

        Raises:
            StoreError: ``limit`` outside 1..MAX_PAGE or an invalid ``cursor``.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise StoreError(f"limit must be between 1 and {MAX_PAGE}")
        query = select(CallRow)
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
            at, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(CallRow.created_at < at, (CallRow.created_at == at) & (CallRow.id < last_id))
            )
        query = query.order_by(CallRow.created_at.desc(), CallRow.id.desc()).limit(limit + 1)
        try:
            async with self._sessions() as s:
                rows = list(await s.scalars(query))
        except SQLAlchemyError as exc:
            raise StoreError(f"call store read failed: {exc}") from exc
        items = tuple(ops.row_to_record(r) for r in rows[:limit])
        more = len(rows) > limit
        return CallPage(items=items, next_cursor=_encode_cursor(items[-1]) if more else None)

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
        unknown = [g for g in group_by if g not in GROUP_KEYS]
        if unknown:
            raise StoreError(f"cannot group usage by {', '.join(unknown)}")
        keys = list(dict.fromkeys(group_by))
        if self.dialect == "postgresql":
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
        try:
            async with self._sessions() as s:
                result = (await s.execute(query)).mappings().all()
        except SQLAlchemyError as exc:
            raise StoreError(f"call store read failed: {exc}") from exc
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


def _sqlite_pragmas(*, wal: bool) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return on_connect
