"""Connecting the store: database URLs, the async engine per backend, Alembic migrations.

URLs: ``sqlite+aiosqlite:///path.db`` (``sqlite:///`` is rewritten), ``postgresql+asyncpg://``
(``postgresql://`` / ``postgres://`` are rewritten to asyncpg). A PostgreSQL ``schema`` is put
on every connection's ``search_path``; SQLite gets foreign keys and, for files, WAL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    "normalise_database_url",
    "transaction",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
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


@dataclass(frozen=True, slots=True)
class Database:
    """An engine and what it was made from (``schema`` is None unless PostgreSQL)."""

    url: str
    dialect: str
    schema: str | None
    engine: AsyncEngine


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
    elif dialect == "sqlite" and parsed.database:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **kwargs)
    if dialect == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(wal=not memory))
    return Database(url, dialect, schema, engine)


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
