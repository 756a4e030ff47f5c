"""The database goes away and comes back: nothing recorded meanwhile is lost.

A throwaway PostgreSQL server (tests/store/throwaway_pg.py; never the machine's shared one) is
stopped the way a crash stops it (every connection dropped at once) while a call records.
Recording never waits; writes beyond the in-memory bound go to the spool file; once the server
is back everything is in the database, in order, read back through the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import UNIT
from tests.store.throwaway_pg import ThrowawayPostgres, throwaway_postgres
from tests.waiting import eventually, eventually_async

from switchboard.media import Usage
from switchboard.store import CallStore

pytestmark = pytest.mark.anyio


async def _transcript(store: CallStore, call_id: str) -> list[str]:
    detail = await store.get_call(call_id)
    return [t.text for t in detail.transcript] if detail is not None else []


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as server:
        yield server


async def test_records_written_during_an_outage_reach_the_database_when_it_returns(
    postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    store = CallStore(
        postgres.url, flush_interval_s=0.02, max_pending=40, spool_dir=tmp_path / "spool"
    )
    await store.migrate()
    call = await store.create_call(
        carrier="twilio", carrier_call_id="CA1", from_number="+15550001", to_number="+15550002"
    )
    recorder = store.recorder(call.id)
    for i in range(10):
        recorder.record_transcript("caller" if i % 2 else "agent", f"line {i}")
    await recorder.flush()
    assert await _transcript(store, call.id) == [f"line {i}" for i in range(10)]

    await asyncio.to_thread(postgres.stop)  # mid-call: the server dies
    for i in range(10, 300):  # the call goes on talking: 290 more lines
        recorder.record_transcript("caller" if i % 2 else "agent", f"line {i}")
    recorder.record_update(extra={"note": "written during the outage"})
    await eventually(lambda: store.writer.outage, what="the writer noticing the outage")
    started = time.monotonic()
    await recorder.finalize("completed", "caller_hangup", usage=Usage(input_audio_tokens=7))
    assert time.monotonic() - started < 1.0 * UNIT  # ending a call never waits on the outage
    assert store.writer.spooled > 0  # beyond 40 in memory, the rest went to disk
    assert store.writer.dropped == 0

    await asyncio.to_thread(postgres.start)
    lines = await eventually_async(
        lambda: _has(store, call.id, 300), limit_s=30, every_s=0.2, what="all 300 lines written"
    )
    assert lines == [f"line {i}" for i in range(300)]  # all of them, in order, once
    detail = await store.get_call(call.id)
    assert detail is not None
    assert detail.record.status == "completed" and detail.record.end_reason == "caller_hangup"
    assert detail.record.extra == {"note": "written during the outage"}
    assert detail.record.usage is not None and detail.record.usage.input_audio_tokens == 7
    await eventually(lambda: not store.writer.outage, what="the writer leaving the outage")
    await store.aclose()
    assert list((tmp_path / "spool").glob("spool-*.jsonl")) == []  # drained and removed


async def _has(store: CallStore, call_id: str, count: int) -> list[str] | None:
    try:
        lines = await _transcript(store, call_id)
    except Exception:  # the server is still starting
        return None
    return lines if len(lines) >= count else None


async def test_what_is_held_at_shutdown_is_written_by_the_next_start(
    postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    store = CallStore(postgres.url, flush_interval_s=0.02, spool_dir=spool)
    await store.migrate()
    call = await store.create_call(
        carrier="telnyx", carrier_call_id="v3:1", from_number="+15550001", to_number="+1555002"
    )
    recorder = store.recorder(call.id)
    await asyncio.to_thread(postgres.stop)
    for i in range(25):
        recorder.record_timeline("tick", {"i": i})
    await recorder.finalize("completed", "agent_hangup")
    await store.aclose()  # the process stops while the database is still down
    assert store.writer.dropped == 0
    assert list(spool.glob("spool-*.jsonl"))  # kept on disk

    await asyncio.to_thread(postgres.start)
    later = CallStore(postgres.url, flush_interval_s=0.02, spool_dir=spool)
    await later.migrate()  # the next start adopts the spool and applies it

    async def finished() -> bool:
        detail = await later.get_call(call.id)
        return detail is not None and detail.record.status == "completed"

    await eventually_async(finished, limit_s=20, every_s=0.1, what="the spooled end applied")
    detail = await later.get_call(call.id)
    assert detail is not None
    assert [e.data.get("i") for e in detail.timeline if e.kind == "tick"] == list(range(25))
    await later.aclose()
    assert list(spool.glob("spool-*.jsonl")) == []
