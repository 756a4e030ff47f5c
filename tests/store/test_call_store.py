"""CallStore: create a call, write through its recorder, read; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from switchboard.catalog import load_catalog
from switchboard.cost import estimate_call_cost
from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.store import CallStatus, CallStore, normalise_database_url

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 20, 23, 59, 0, tzinfo=UTC)


async def make_call(
    store: CallStore, n: int, *, at: datetime, provider: str = "openai", **fields: object
) -> str:
    record = await store.create_call(
        carrier=str(fields.pop("carrier", "twilio")),
        carrier_call_id=f"CA{n:04d}",
        from_number="+15550001111",
        to_number="+15550002222",
        provider=provider,
        agent=str(fields.pop("agent", "receptionist")),
        created_at=at,
    )
    return record.id


async def update(store: CallStore, call_id: str, **fields: object) -> None:
    """Set call fields through the call's recorder, as the bridge does, and wait for the write."""
    recorder = store.recorder(call_id)
    recorder.record_update(**fields)
    await recorder.flush()
    assert store.writer.errors == []


async def test_create_update_finalize_and_read_back(store: CallStore) -> None:
    created = await store.create_call(
        carrier="twilio",
        carrier_call_id="CA123",
        from_number="+15550001111",
        to_number="+15550002222",
        agent="receptionist",
        call_id="call_fixed",
        created_at=T0,
        extra={"stream_sid": "MZ1"},
    )
    assert (created.id, created.status, created.created_at) == ("call_fixed", "ringing", T0)
    recorder = store.recorder("call_fixed")
    recorder.record_update(
        status=CallStatus.IN_PROGRESS,
        answered_at=T0 + timedelta(seconds=2),
        provider="openai",
        model="gpt-realtime",
    )
    recorder.record_transcript("agent", "Hello!", started_ms=0, ended_ms=900)
    recorder.record_transcript("caller", "Hi, I need", started_ms=1200)
    recorder.record_transcript("agent", "Sure, let me", started_ms=2500, interrupted=True)
    recorder.record_tool_call(
        "end_call",
        {"goodbye": "Bye"},
        {"result": "call ended"},
        ok=True,
        duration_ms=12.5,
        provider_call_id="fc_1",
    )
    recorder.record_timeline("answered", {"carrier": "twilio"}, at=T0)
    recorder.record_timeline("barge_in", {"played_ms": 640})
    recorder.record_turn_latency(1, 480.0)
    recorder.record_turn_latency(2, 620.0)
    usage = Usage(input_audio_tokens=3200, output_audio_tokens=4000)
    cost = estimate_call_cost(
        load_catalog(),
        provider="openai",
        model="gpt-realtime",
        usage=usage,
        carrier="twilio",
        carrier_seconds=63,
    )
    await recorder.finalize(
        "completed", "agent_hung_up", usage, cost, ended_at=T0 + timedelta(seconds=65)
    )
    assert store.writer.errors == []

    detail = await store.get_call("call_fixed")
    assert detail is not None
    r = detail.record
    assert (r.status, r.end_reason, r.provider, r.model) == (
        "completed",
        "agent_hung_up",
        "openai",
        "gpt-realtime",
    )
    assert r.answered_at == T0 + timedelta(seconds=2)
    assert r.ended_at == T0 + timedelta(seconds=65)
    assert r.duration_s == pytest.approx(63.0)
    assert r.usage == usage
    assert r.cost == cost
    assert r.cost_total == pytest.approx(cost.total)
    assert r.extra == {"stream_sid": "MZ1"}
    assert [(t.seq, t.role, t.text, t.interrupted) for t in detail.transcript] == [
        (0, "agent", "Hello!", False),
        (1, "caller", "Hi, I need", False),
        (2, "agent", "Sure, let me", True),
    ]
    assert detail.transcript[0].ended_ms == 900
    (tool,) = detail.tool_calls
    assert (tool.name, tool.arguments, tool.result, tool.ok, tool.provider_call_id) == (
        "end_call",
        {"goodbye": "Bye"},
        {"result": "call ended"},
        True,
        "fc_1",
    )
    assert [(e.seq, e.kind, e.data) for e in detail.timeline] == [
        (0, "answered", {"carrier": "twilio"}),
        (1, "barge_in", {"played_ms": 640}),
    ]
    assert detail.timeline[0].at == T0
    assert [(x.turn, x.latency_ms) for x in detail.latencies] == [(1, 480.0), (2, 620.0)]


async def test_created_record_is_what_reads_back(store: CallStore) -> None:
    created = await store.create_call(
        carrier="telnyx",
        carrier_call_id="v3:abc",
        from_number="+15550001111",
        to_number="+15550002222",
        direction="outbound",
        provider="gemini",
        status="in-progress",
        extra={"k": 1},
    )
    assert created.id.startswith("call_")
    detail = await store.get_call(created.id)
    assert detail is not None
    assert detail.record == created


async def test_unknown_call_and_bad_writes(store: CallStore) -> None:
    assert await store.get_call("call_missing") is None
    missing = store.recorder("call_missing")
    missing.record_update(status="failed")
    await missing.flush()
    assert store.writer.errors[-1] == "StoreError: no call 'call_missing'"
    with pytest.raises(StoreError, match="cannot update call fields colour"):
        missing.record_update(colour="red")
    await missing.finalize("failed", "x")
    assert "no call" in store.writer.errors[-1]
    assert len(store.writer.errors) == 2
    call = await store.create_call(
        carrier=None, carrier_call_id=None, from_number=None, to_number=None
    )
    with pytest.raises(StoreError, match="role must be"):
        store.recorder(call.id).record_transcript("robot", "beep")


async def test_find_by_carrier_id(store: CallStore) -> None:
    first = await make_call(store, 1, at=T0)
    await make_call(store, 2, at=T0, carrier="telnyx")
    found = await store.find_by_carrier_id("twilio", "CA0001")
    assert found is not None
    assert found.id == first
    assert await store.find_by_carrier_id("telnyx", "CA0001") is None


async def test_list_filters_and_cursor_pagination(store: CallStore) -> None:
    ids = [
        await make_call(store, n, at=T0 + timedelta(minutes=n // 2), provider=p)
        for n, p in enumerate(["openai", "gemini", "openai", "gemini", "openai", "local", "openai"])
    ]
    await update(store, ids[0], status="completed")
    page = await store.list_calls(limit=3)
    assert page.items[0].id == ids[6]  # the newest minute holds only the last call
    assert {r.id for r in page.items[1:]} == {ids[4], ids[5]}
    assert page.next_cursor is not None
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_calls(limit=3, cursor=cursor)
        seen.extend(r.id for r in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen)) == 7
    created = [(r.created_at, r.id) for r in (await store.list_calls(limit=10)).items]
    assert created == sorted(created, reverse=True)

    openai = await store.list_calls(provider="openai")
    assert {r.id for r in openai.items} == {ids[0], ids[2], ids[4], ids[6]}
    assert [r.id for r in (await store.list_calls(status="completed")).items] == [ids[0]]
    assert (await store.list_calls(carrier="telnyx")).items == ()
    window = await store.list_calls(
        since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)
    )
    assert {r.id for r in window.items} == {ids[2], ids[3], ids[4], ids[5]}
    assert (await store.list_calls(agent="receptionist", limit=200)).next_cursor is None


async def test_list_rejects_bad_limit_and_cursor(store: CallStore) -> None:
    with pytest.raises(StoreError, match="limit"):
        await store.list_calls(limit=0)
    with pytest.raises(StoreError, match="invalid cursor"):
        await store.list_calls(cursor="not-a-cursor!")


async def test_usage_summary_by_day_and_provider(store: CallStore) -> None:
    # Two calls on 2026-11-20 (UTC) with openai, one on the 21st with openai, one gemini.
    plan = [
        (T0 - timedelta(hours=1), "openai", 60.0, 0.10),
        (T0, "openai", 90.0, 0.20),
        (T0 + timedelta(minutes=2), "openai", 30.0, 0.05),
        (T0 + timedelta(minutes=3), "gemini", 120.0, 0.30),
    ]
    for n, (at, provider, seconds, total) in enumerate(plan):
        call_id = await make_call(store, n, at=at, provider=provider)
        await update(
            store,
            call_id,
            duration_s=seconds,
            cost={"total": total, "lines": []},
            status="completed",
        )
    rows = await store.usage_summary()
    assert [(r.day, r.provider, r.calls, r.minutes) for r in rows] == [
        (date(2026, 11, 20), "openai", 2, 2.5),
        (date(2026, 11, 21), "gemini", 1, 2.0),
        (date(2026, 11, 21), "openai", 1, 0.5),
    ]
    assert [r.cost for r in rows] == pytest.approx([0.30, 0.30, 0.05])
    by_provider = await store.usage_summary(group_by=["provider"], since=T0)
    assert [(r.day, r.provider, r.calls) for r in by_provider] == [
        (None, "gemini", 1),
        (None, "openai", 2),
    ]
    (overall,) = await store.usage_summary(group_by=[])
    assert (overall.calls, overall.minutes) == (4, 5.0)
    with pytest.raises(StoreError, match="cannot group usage by colour"):
        await store.usage_summary(group_by=["colour"])


async def test_migrate_is_idempotent(store: CallStore) -> None:
    await store.migrate()
    await store.create_call(carrier=None, carrier_call_id=None, from_number=None, to_number=None)
    assert len((await store.list_calls()).items) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_url_normalisation(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected


def test_unsupported_url_and_schema() -> None:
    with pytest.raises(StoreError, match="must be sqlite"):
        normalise_database_url("mysql://u@h/db")
    with pytest.raises(StoreError, match="invalid schema"):
        CallStore("postgresql://u@h/db", schema="bad; drop")
