"""The packaged Alembic migrations create exactly the schema the models describe."""

from __future__ import annotations

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
    assert version == "0001"


def test_single_head_and_linear_history() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_heads() == ["0001"]
    assert [rev.revision for rev in script.walk_revisions()] == ["0001"]
