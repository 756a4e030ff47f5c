"""CallRecorder: non-blocking record_* calls, batched commits, crash safety, bad writes."""

from __future__ import annotations

import pytest
from tests.waiting import eventually_async

from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.store import CallDetail, CallStore
from switchboard.tools import ToolResult

pytestmark = pytest.mark.anyio


async def new_call(store: CallStore) -> str:
    record = await store.create_call(
        carrier="twilio", carrier_call_id="CA1", from_number="+15550001111", to_number="+15550002"
    )
    return record.id


async def test_records_are_batched_into_one_commit(store: CallStore) -> None:
    call_id = await new_call(store)
    recorder = store.recorder(call_id)
    recorder.record_update(status="in-progress", provider="gemini")  # Twilio's spelling
    for n in range(20):
        recorder.record_transcript("caller" if n % 2 else "agent", f"line {n}", started_ms=n * 100)
        recorder.record_timeline("turn", {"n": n})
        recorder.record_turn_latency(n, 400.0 + n)
    recorder.record_tool_result(
        ToolResult("end_call", True, "call ended", None, {"goodbye": "Bye"}, 3.5, "fc_9")
    )
    assert store.writer.batches == 0  # nothing waited on the database yet
    await recorder.flush()
    assert store.writer.batches == 1
    assert store.writer.errors == []
    detail = await store.get_call(call_id)
    assert detail is not None
    assert detail.record.status == "in_progress"
    assert detail.record.provider == "gemini"
    assert [t.text for t in detail.transcript] == [f"line {n}" for n in range(20)]
    assert [t.seq for t in detail.transcript] == list(range(20))
    assert [e.data["n"] for e in detail.timeline] == list(range(20))
    assert len(detail.latencies) == 20
    (tool,) = detail.tool_calls
    assert (tool.name, tool.result, tool.duration_ms, tool.provider_call_id) == (
        "end_call",
        {"result": "call ended"},
        3.5,
        "fc_9",
    )


async def test_record_calls_do_no_database_io(store: CallStore) -> None:
    """record_* are plain functions: 500 of them with no await in between commit nothing."""
    recorder = store.recorder(await new_call(store))
    for n in range(500):
        recorder.record_timeline("media", {"n": n})
    assert store.writer.batches == 0
    await recorder.flush()
    detail = await store.get_call(recorder.call_id)
    assert detail is not None
    assert len(detail.timeline) == 500


async def test_crash_mid_call_leaves_a_readable_record(
    store: CallStore, store_target: tuple[str, str | None]
) -> None:
    """Without any flush, the writer commits within its interval; another reader sees it."""
    call_id = await new_call(store)
    recorder = store.recorder(call_id)
    recorder.record_update(status="in_progress")
    recorder.record_transcript("agent", "Hello, how can I help?")
    recorder.record_transcript("caller", "My order is")
    recorder.record_timeline("barge_in", {"played_ms": 300})
    # The call task "crashes" here: no finalize, no flush. A separate store reads the database.
    url, schema = store_target
    reader = CallStore(url, schema=schema)
    try:

        async def written() -> CallDetail | None:
            detail = await reader.get_call(call_id)
            done = detail is not None and detail.timeline and detail.record.status == "in_progress"
            return detail if done else None

        detail = await eventually_async(written, limit_s=3, what="the writer's commit")
        assert detail.record.status == "in_progress"
        assert [t.text for t in detail.transcript] == ["Hello, how can I help?", "My order is"]
        assert detail.timeline[0].data == {"played_ms": 300}
    finally:
        await reader.aclose()


async def test_one_bad_record_loses_only_itself(store: CallStore) -> None:
    good = store.recorder(await new_call(store))
    ghost = store.recorder("call_that_does_not_exist")
    good.record_transcript("agent", "first")
    ghost.record_transcript("agent", "orphan")  # foreign key violation
    good.record_transcript("caller", "second")
    await good.flush()
    detail = await store.get_call(good.call_id)
    assert detail is not None
    assert [t.text for t in detail.transcript] == ["first", "second"]
    assert len(store.writer.errors) == 1
    assert "IntegrityError" in store.writer.errors[0] or "ForeignKey" in store.writer.errors[0]


async def test_finalize_through_the_recorder(store: CallStore) -> None:
    recorder = store.recorder(await new_call(store))
    recorder.record_update(status="in_progress", cost={"total": 0.5, "lines": []})
    await recorder.finalize(
        "failed", "provider_error", Usage(output_audio_tokens=10), error="upstream 500"
    )
    detail = await store.get_call(recorder.call_id)
    assert detail is not None
    record = detail.record
    assert (record.status, record.end_reason, record.error) == (
        "failed",
        "provider_error",
        "upstream 500",
    )
    assert record.usage == Usage(output_audio_tokens=10)
    assert record.ended_at is not None
    assert record.duration_s == 0.0  # never answered
    assert record.cost_total == 0.5  # finalize without a cost keeps the one recorded earlier


async def test_programming_errors_raise_at_once(store: CallStore) -> None:
    recorder = store.recorder("call_x")
    with pytest.raises(StoreError, match="cannot update call fields mood"):
        recorder.record_update(mood="happy")
    with pytest.raises(StoreError, match="role must be"):
        recorder.record_transcript("narrator", "Once upon a time")


async def test_backlog_limit_drops_instead_of_blocking(
    store_target: tuple[str, str | None],
) -> None:
    url, schema = store_target
    small = CallStore(url, schema=schema, max_pending=3, flush_interval_s=10)
    try:
        await small.migrate()
        recorder = small.recorder(await new_call(small))
        for n in range(5):
            recorder.record_timeline("tick", {"n": n})
        assert small.writer.dropped == 2
        await recorder.flush()
        detail = await small.get_call(recorder.call_id)
        assert detail is not None
        assert [e.data["n"] for e in detail.timeline] == [0, 1, 2]
    finally:
        await small.aclose()
    recorder.record_timeline("after close")
    assert small.writer.dropped == 3
