"""The webhook outbox: events commit with the change they report, chains deliver in order,
claims are exclusive; and the analysis queue. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from switchboard.catalog import load_catalog
from switchboard.cost import estimate_call_cost
from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.store import CallStore, ops
from switchboard.store.analyses import AnalysisQueue
from switchboard.store.outbox import Outbox

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
A, B = "http://127.0.0.1:9/a", "http://127.0.0.1:9/b"


async def new_call(store: CallStore, call_id: str, *, urls: tuple[str, ...] = (A,)) -> None:
    await store.create_call(
        carrier="twilio",
        carrier_call_id=f"CA_{call_id}",
        from_number="+15550001111",
        to_number="+15550002222",
        agent="receptionist",
        call_id=call_id,
        created_at=T0,
        also=[ops.EnqueueEvent(call_id, "call.started", {"call_id": call_id}, urls, at=T0)],
    )


async def test_an_event_commits_with_its_change_or_not_at_all(store: CallStore) -> None:
    await new_call(store, "call_1", urls=(A, B))
    pending = await store.outbox.deliveries(status="pending")
    assert sorted(d.url for d in pending) == [A, B]
    assert {d.event_id for d in pending} == {pending[0].event_id}  # one id for every URL
    body = json.loads(pending[0].body)
    assert body == {
        "type": "call.started",
        "timestamp": T0.isoformat(),
        "data": {"call_id": "call_1"},
    }
    # A group whose event cannot be written (no such call) leaves the change unwritten too.
    group = ops.Group(
        (
            ops.UpdateCall("call_1", {"status": "in-progress"}),
            ops.EnqueueEvent("call_nope", "call.answered", {}, (A,)),
        )
    )
    with pytest.raises(StoreError):
        await store.write([group])
    detail = await store.get_call("call_1")
    assert detail is not None and detail.record.status == "ringing"
    assert len(await store.outbox.deliveries()) == 2


async def test_a_failing_batch_retried_op_by_op_keeps_groups_whole(store: CallStore) -> None:
    """The background writer retries a failed batch one op at a time: a Group stays one."""
    await new_call(store, "call_1")
    recorder = store.recorder("call_1")
    recorder.record(ops.UpdateCall("call_unknown", {"status": "failed"}))  # fails the batch
    recorder.record(
        ops.Group(
            (
                ops.UpdateCall("call_1", {"status": "in-progress", "answered_at": T0}),
                ops.EnqueueEvent("call_1", "call.answered", {"call_id": "call_1"}, (A,)),
            )
        )
    )
    await recorder.flush()
    assert len(store.writer.errors) == 1
    detail = await store.get_call("call_1")
    assert detail is not None and detail.record.status == "in_progress"
    types = [d.event_type for d in await store.outbox.deliveries()]
    assert types == ["call.answered", "call.started"]  # newest first


async def test_call_ended_carries_the_record_as_finalised(store: CallStore) -> None:
    await new_call(store, "call_1")
    recorder = store.recorder("call_1")
    recorder.record_update(status="in-progress", answered_at=T0)
    recorder.record_transcript("caller", "I need an appointment", started_ms=100)
    recorder.record_transcript("agent", "Tuesday at ten?", started_ms=900, interrupted=True)
    recorder.record_tool_call("book", {"day": "tue"}, {"ok": True}, ok=True, duration_ms=12.5)
    usage = Usage(input_audio_seconds=30.0, output_audio_seconds=20.0)
    cost = estimate_call_cost(
        load_catalog(),
        provider="openai",
        model=None,
        usage=usage,
        carrier="twilio",
        carrier_seconds=61.0,
    )
    ended = ops.EnqueueEvent("call_1", "call.ended", {"call_id": "call_1"}, (A,), with_record=True)
    await recorder.finalize(
        "completed",
        "caller_hangup",
        usage,
        cost,
        ended_at=T0 + timedelta(seconds=61),
        also=(ended,),
    )
    assert store.writer.errors == []
    [delivery] = await store.outbox.deliveries(event_type="call.ended")
    data = json.loads(delivery.body)["data"]
    assert data["outcome"] == "caller_hangup" and data["status"] == "completed"
    assert data["duration_s"] == pytest.approx(61.0)
    assert data["transcript"] == [
        {"role": "caller", "text": "I need an appointment", "at_ms": 100, "interrupted": False},
        {"role": "agent", "text": "Tuesday at ten?", "at_ms": 900, "interrupted": True},
    ]
    assert [(t["name"], t["arguments"], t["ok"]) for t in data["tool_calls"]] == [
        ("book", {"day": "tue"}, True)
    ]
    assert data["cost"]["total"] == pytest.approx(cost.total)
    assert data["usage"]["input_audio_seconds"] == 30.0
    assert "recording_url" not in data  # no recording was made
    assert delivery.seq == 1  # after call.started


async def test_each_url_gets_a_calls_events_in_order(store: CallStore) -> None:
    await new_call(store, "call_1", urls=(A, B))
    await new_call(store, "call_2")
    for kind in ("call.answered", "call.ended"):
        await store.write([ops.EnqueueEvent("call_1", kind, {}, (A, B), at=T0)])
    now = T0 + timedelta(seconds=1)
    first = await store.outbox.claim_due(now, limit=10, lease_s=30)
    # only chain heads: call_1's first event for each URL, call_2's first
    assert sorted((d.call_id, d.url, d.event_type) for d in first) == [
        ("call_1", A, "call.started"),
        ("call_1", B, "call.started"),
        ("call_2", A, "call.started"),
    ]
    assert await store.outbox.claim_due(now, limit=10, lease_s=30) == []  # all leased
    by_url = {(d.call_id, d.url): d for d in first}
    await store.outbox.delivered(by_url[("call_1", A)].id, now, 200)
    # B's head failed: it is due again later, and B's next event waits behind it
    await store.outbox.attempt_failed(
        by_url[("call_1", B)].id,
        now,
        error="HTTP 500",
        status_code=500,
        retry_at=now + timedelta(60),
    )
    second = await store.outbox.claim_due(now, limit=10, lease_s=30)
    assert [(d.url, d.event_type) for d in second] == [(A, "call.answered")]
    failed = await store.outbox.get(by_url[("call_1", B)].id)
    assert failed is not None
    assert (failed.status, failed.attempts, failed.last_status_code) == ("pending", 1, 500)
    assert failed.last_error == "HTTP 500"


async def test_a_lapsed_lease_is_claimed_again_and_claims_are_exclusive(
    store: CallStore,
) -> None:
    await new_call(store, "call_1")
    other = Outbox(store._sessions)  # a second worker on the same database
    [mine] = await store.outbox.claim_due(T0, limit=5, lease_s=10)
    assert await other.claim_due(T0 + timedelta(seconds=9), limit=5, lease_s=10) == []
    [again] = await other.claim_due(T0 + timedelta(seconds=10), limit=5, lease_s=10)
    assert again.id == mine.id and again.event_id == mine.event_id


async def test_given_up_deliveries_release_the_chain_and_can_be_retried(
    store: CallStore,
) -> None:
    await new_call(store, "call_1")
    await store.write([ops.EnqueueEvent("call_1", "call.answered", {}, (A,), at=T0)])
    [head] = await store.outbox.claim_due(T0, limit=5, lease_s=10)
    await store.outbox.attempt_failed(head.id, T0, error="refused", status_code=None, retry_at=None)
    [gave_up] = await store.outbox.deliveries(status="failed")
    assert gave_up.id == head.id
    [nxt] = await store.outbox.claim_due(T0, limit=5, lease_s=10)
    assert nxt.event_type == "call.answered"
    retried = await store.outbox.retry(head.id, T0 + timedelta(seconds=5))
    assert retried is not None and retried.status == "pending"
    assert await store.outbox.retry(10_000, T0) is None
    with pytest.raises(StoreError, match="status"):
        await store.outbox.deliveries(status="lost")


async def test_event_urls_must_be_http() -> None:
    with pytest.raises(StoreError, match="http"):
        ops.EnqueueEvent("call_1", "call.started", {}, ("file:///etc/passwd",))


async def test_analysis_queue_claims_once_and_retakes_lapsed_leases(store: CallStore) -> None:
    await new_call(store, "call_1")
    request = {"spec": {"summary": True}, "urls": [A]}
    await store.write([ops.RequestAnalysis("call_1", request, due_at=T0)])
    detail = await store.get_call("call_1")
    assert detail is not None and detail.record.analysis == {"status": "pending"}
    other = AnalysisQueue(store._sessions)
    [job] = await store.analyses.claim_due(T0, limit=5, lease_s=60)
    assert (job.call_id, dict(job.request)) == ("call_1", request)
    assert await other.claim_due(T0 + timedelta(seconds=59), limit=5, lease_s=60) == []
    [again] = await other.claim_due(T0 + timedelta(seconds=60), limit=5, lease_s=60)
    assert again.call_id == "call_1"
    await store.write([ops.SetAnalysis("call_1", "done", {"summary": "Booked."})])
    assert await store.analyses.claim_due(T0 + timedelta(days=1), limit=5, lease_s=60) == []
    detail = await store.get_call("call_1")
    assert detail is not None
    assert detail.record.analysis == {"status": "done", "summary": "Booked."}
    with pytest.raises(StoreError, match="analysis status"):
        ops.SetAnalysis("call_1", "great", {})
