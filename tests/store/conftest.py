"""Call-store fixtures: every store test runs on SQLite, and on PostgreSQL when configured.

PostgreSQL runs when ``SWITCHBOARD_TEST_POSTGRES_URL`` is set (each test gets its own schema,
dropped afterwards, so parallel runs never collide). With ``CI=true`` the PostgreSQL variants
are always collected: a missing URL or unreachable server FAILS them rather than skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.store import CallStore, normalise_database_url

POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"

BACKENDS = ["sqlite"]
if POSTGRES_URL or IN_CI:
    BACKENDS.append("postgres")


async def _drop_schema(url: str, schema: str) -> None:
    engine = create_async_engine(normalise_database_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(database URL, schema) for one backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", None
    if not POSTGRES_URL:
        pytest.fail(
            "CI=true but SWITCHBOARD_TEST_POSTGRES_URL is not set: PostgreSQL tests must run"
        )
    return POSTGRES_URL, f"sbtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(store_target: tuple[str, str | None]) -> AsyncIterator[CallStore]:
    """A migrated store; flush interval short so tests stay fast."""
    url, schema = store_target
    call_store = CallStore(url, schema=schema, flush_interval_s=0.05)
    try:
        await call_store.migrate()
        yield call_store
    finally:
        await call_store.aclose()
        if schema:
            await _drop_schema(url, schema)
