"""Connecting the store: database URLs, the async engine per backend, Alembic migrations.

URLs: ``sqlite+aiosqlite:///path.db`` (``sqlite:///`` is rewritten), ``postgresql+asyncpg://``
(``postgresql://`` / ``postgres://`` are rewritten to asyncpg). A PostgreSQL ``schema`` is put
on every connection's ``search_path``; SQLite gets foreign keys and, for files, WAL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from switchboard.errors import StoreError

__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "connect",
    "fill_pool",
    "normalise_database_url",
    "transaction",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Connections a file SQLite store opens at start and keeps, and never more (see connect()).
SQLITE_POOL_SIZE = 5


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


@dataclass(frozen=True, slots=True)
class Database:
    """An engine and what it was made from (``schema`` is None unless PostgreSQL).

    ``fixed_pool`` is how many connections :func:`fill_pool` opens at start (0: the pool
    grows on demand).
    """

    url: str
    dialect: str
    schema: str | None
    engine: AsyncEngine
    fixed_pool: int = 0


def connect(url: str, *, schema: str | None = None, echo: bool = False) -> Database:
    """An async engine for ``url`` (no connection is opened yet).

    Raises:
        StoreError: an unsupported or malformed URL, or an invalid schema name.
    """
    url = normalise_database_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL: {exc}") from exc
    dialect = parsed.get_backend_name()
    if schema is not None and not _SCHEMA_RE.match(schema):
        raise StoreError(f"invalid schema name {schema!r}")
    schema = schema if dialect == "postgresql" else None
    kwargs: dict[str, Any] = {"echo": echo}
    if dialect == "postgresql" and schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    memory = dialect == "sqlite" and parsed.database in (None, "", ":memory:")
    if memory:
        kwargs["poolclass"] = StaticPool
    fixed_pool = 0
    if dialect == "sqlite" and not memory:
        Path(str(parsed.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # A fixed pool, opened at start: a connection SQLite closes while another one in the
        # process holds a lock on the file keeps its file descriptors open (POSIX locks are per
        # process; SQLite parks the fds for reuse), so an on-demand pool's overflow would leave
        # its high-water mark of open files behind. SQLite serialises writers anyway and the
        # store batches its writes; a sixth overlapping operation waits for a connection.
        fixed_pool = SQLITE_POOL_SIZE
        kwargs["pool_size"] = fixed_pool
        kwargs["max_overflow"] = 0
    engine = create_async_engine(url, **kwargs)
    if dialect == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(wal=not memory))
    return Database(url, dialect, schema, engine, fixed_pool)


async def fill_pool(database: Database) -> None:
    """Open a fixed pool's connections now, so a running server's open files do not grow.

    Raises:
        StoreError: the database cannot be opened.
    """
    try:
        async with AsyncExitStack() as held:
            for _ in range(database.fixed_pool):
                await held.enter_async_context(database.engine.connect())
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot open the call store: {type(exc).__name__}") from exc


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession], what: str
) -> AsyncIterator[AsyncSession]:
    """A session in a transaction; a database error becomes ``StoreError("<what> unavailable")``.

    Only the error's type goes into the message: a driver's text can carry the URL's password.
    """
    try:
        async with sessions() as session, session.begin():
            yield session
    except SQLAlchemyError as exc:
        raise StoreError(f"{what} unavailable: {type(exc).__name__}") from exc


def upgrade(connection: Connection) -> None:
    """Alembic ``upgrade head`` with the packaged migrations, on an open connection."""
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


def _sqlite_pragmas(*, wal: bool) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return on_connect
