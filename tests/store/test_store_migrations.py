"""The packaged Alembic migrations create exactly the schema the models describe."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from switchboard.store import CallStore
from switchboard.store.engine import MIGRATIONS_DIR
from switchboard.store.models import Base

pytestmark = pytest.mark.anyio


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_models(store: CallStore) -> None:
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert diff == []
    assert version == "0003"


def test_single_head_and_linear_history() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_heads() == ["0003"]
    assert [rev.revision for rev in script.walk_revisions()] == ["0003", "0002", "0001"]


def _upgrade_to(connection: Connection, revision: str) -> None:
    from alembic import command

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def test_upgrading_from_0001_keeps_the_records(store_target: tuple[str, str | None]) -> None:
    """0002 and 0003 add columns to ``calls``: a database holding calls and their transcripts (which
    cascade from ``calls``) keeps every row through the upgrade."""
    url, schema = store_target
    old = CallStore(url, schema=schema)
    try:
        async with old.engine.begin() as conn:
            if schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_upgrade_to, "0001")
            await conn.execute(
                text(
                    "INSERT INTO calls (id, direction, status, created_at, provider) "
                    "VALUES ('call_old', 'inbound', 'completed', CURRENT_TIMESTAMP, 'openai')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO transcript_entries (call_id, seq, role, text, interrupted) "
                    "VALUES ('call_old', 0, 'caller', 'hello', false)"
                )
            )
        await old.migrate()
        detail = await old.get_call("call_old")
        assert detail is not None
        assert [t.text for t in detail.transcript] == ["hello"]
        assert detail.record.providers == ("openai",)
        async with old.engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            served = (await conn.execute(text("SELECT providers FROM calls"))).scalar()
        if isinstance(served, str):  # SQLite's JSON is text; asyncpg decodes it
            served = json.loads(served)
        assert served == ["openai"]  # 0003 fills in the one provider
        assert version == "0003"
    finally:
        await old.aclose()
        if schema:
            from tests.backends import drop_schema

            await drop_schema(url, schema)
