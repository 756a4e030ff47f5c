"""The database backends store-backed tests run on: SQLite always, PostgreSQL always collected.

A PostgreSQL variant needs ``SWITCHBOARD_TEST_POSTGRES_URL`` (``.ci/run`` sets it), the
``[postgres]`` extra and a server that answers. When one is missing it is *skipped with the
reason* (``pytest -ra`` lists it), except under ``CI=true``, where it FAILS: CI must run it.
Each PostgreSQL test gets its own schema, dropped afterwards, so parallel runs never collide.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.store import CallStore, normalise_database_url

__all__ = [
    "BACKENDS",
    "IN_CI",
    "POSTGRES_URL",
    "database_target",
    "drop_schema",
    "migrated_store",
    "store",
    "store_target",
]

POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
#: parametrise over this: the PostgreSQL variant carries the ``postgres`` marker
BACKENDS: list[Any] = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    if not POSTGRES_URL:
        return "SWITCHBOARD_TEST_POSTGRES_URL is not set (.ci/run sets it)"
    if importlib.util.find_spec("asyncpg") is None:
        return "asyncpg is not installed (the [postgres] extra)"
    url = make_url(normalise_database_url(POSTGRES_URL))
    host, port = url.host or "127.0.0.1", url.port or 5432
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return f"no PostgreSQL server answers at {host}:{port} ({exc.strerror or exc})"
    return None


def database_target(
    backend: str, tmp_path: Path, *, prefix: str = "sbtest"
) -> tuple[str, str | None]:
    """(database URL, schema) for ``backend``; skips or fails a PostgreSQL test as above."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", None
    reason = postgres_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true and the PostgreSQL tests must run, but {reason}")
        pytest.skip(f"PostgreSQL: {reason}")
    assert POSTGRES_URL is not None
    return POSTGRES_URL, f"{prefix}_{uuid.uuid4().hex[:12]}"


async def drop_schema(url: str, schema: str) -> None:
    """Drop a test's PostgreSQL schema and everything in it."""
    engine = create_async_engine(normalise_database_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@asynccontextmanager
async def migrated_store(
    target: tuple[str, str | None], **options: Any
) -> AsyncIterator[CallStore]:
    """A migrated :class:`CallStore` at ``target``, closed (and its schema dropped) after."""
    url, schema = target
    call_store = CallStore(url, schema=schema, **options)
    try:
        await call_store.migrate()
        yield call_store
    finally:
        await call_store.aclose()
        if schema:
            await drop_schema(url, schema)


@pytest.fixture(params=BACKENDS)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(database URL, schema) for one backend."""
    return database_target(str(request.param), tmp_path)


@pytest.fixture
async def store(store_target: tuple[str, str | None]) -> AsyncIterator[CallStore]:
    """A migrated store on each backend; flush interval short so tests stay fast."""
    async with migrated_store(store_target, flush_interval_s=0.05) as call_store:
        yield call_store
