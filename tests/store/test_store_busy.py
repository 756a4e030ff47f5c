"""A call created while SQLite is busy (another writer holds its lock past the driver's
timeout, as 200 calls starting at once did) is queued, not lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.waiting import eventually_async

from switchboard.store import CallStore

pytestmark = pytest.mark.anyio


async def test_a_call_created_while_sqlite_is_locked_is_written_once_it_is_free(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "calls.db"
    async with CallStore(f"sqlite+aiosqlite:///{db}?timeout=0.2", flush_interval_s=0.05) as store:
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        try:
            record = await store.create_call(
                carrier="twilio",
                carrier_call_id="CA-busy",
                from_number="+15005550006",
                to_number="+15005550001",
            )
            assert await store.get_call(record.id) is None  # (readers wait too: none)
        except Exception:
            other.execute("ROLLBACK")
            raise
        other.execute("ROLLBACK")
        other.close()
        store.recorder(record.id).record_transcript("caller", "still here")
        detail = await eventually_async(lambda: store.get_call(record.id))
        assert detail is not None and detail.record.from_number == "+15005550006"
        await store.writer.flush()
        again = await store.get_call(record.id)
        assert again is not None and [t.text for t in again.transcript] == ["still here"]
    queued = [r for r in caplog.records if "its record is queued" in r.getMessage()]
    assert queued and "+15005550006" not in queued[0].getMessage()
    assert "database is locked" in queued[0].getMessage()
