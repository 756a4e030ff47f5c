"""A file SQLite store opens its connections at start and never more: operations that
overlap do not leave open files behind (the 40-call soak saw them grow by a db + -wal pair,
which SQLite keeps open after a connection closes while another holds a lock)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from switchboard.store import CallStore
from switchboard.store.engine import SQLITE_POOL_SIZE

pytestmark = pytest.mark.anyio


def _open_files(db: Path) -> int:
    """This process's open files on ``db`` or its ``-wal`` (``/proc/self/fd``)."""
    names = {str(db), f"{db}-wal"}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") in names:
                count += 1
        except OSError:
            continue  # closed since listed
    return count


async def test_overlapping_operations_open_no_more_files(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    async with CallStore(f"sqlite+aiosqlite:///{db}") as store:
        at_start = _open_files(db)
        assert at_start == 2 * SQLITE_POOL_SIZE  # each connection: the db and its -wal
        record = await store.create_call(
            carrier="twilio",
            carrier_call_id="CA-pool",
            from_number="+15005550006",
            to_number="+15005550001",
        )
        # Twenty readers at once share the pool's connections.
        details = await asyncio.gather(*(store.get_call(record.id) for _ in range(20)))
        assert all(d is not None for d in details)
        assert _open_files(db) == at_start
    assert _open_files(db) == 0
