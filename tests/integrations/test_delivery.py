"""The delivery worker against a real receiver on loopback (signatures checked by the reference
``standardwebhooks`` library): retries, order, bounds, give-up and retry by hand."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.integrations.delivery import DeliveryWorker
from switchboard.integrations.retry import RetryPolicy
from switchboard.integrations.signing import WebhookSecret
from switchboard.logs import install_wire_redaction
from switchboard.store import CallStore, ops
from switchboard.store.outbox import Delivery
from tests.backends import migrated_store
from tests.conftest import UNIT
from tests.integrations.receiver import Receiver
from tests.waiting import eventually, eventually_async

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"switchboard-test-webhook-key-32b").decode()
KEY = WebhookSecret.parse(SECRET)
FAST = RetryPolicy(initial_s=0.05, max_delay_s=0.2, give_up_after_s=3600.0, jitter=0.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CallStore]:
    target = (f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", None)
    async with migrated_store(target, flush_interval_s=0.02) as call_store:
        yield call_store


def worker(
    store: CallStore,
    *,
    secret: WebhookSecret | None = KEY,
    policy: RetryPolicy = FAST,
    timeout_s: float = 2.0,
    max_response_bytes: int = 4096,
) -> DeliveryWorker:
    return DeliveryWorker(
        store.outbox,
        secret=secret,
        policy=policy,
        timeout_s=timeout_s,
        max_response_bytes=max_response_bytes,
        poll_interval_s=0.05,
    )


async def call_with_events(store: CallStore, call_id: str, url: str, kinds: list[str]) -> None:
    await store.create_call(
        carrier="twilio",
        carrier_call_id=f"CA_{call_id}",
        from_number="+15550001111",
        to_number="+15550002222",
        call_id=call_id,
    )
    for kind in kinds:
        await store.write([ops.EnqueueEvent(call_id, kind, {"call_id": call_id}, (url,))])


async def test_signed_events_arrive_once_each_in_order_through_failures(
    store: CallStore,
) -> None:
    async with Receiver(SECRET, fail_first=2) as receiver:
        kinds = ["call.started", "call.answered", "call.ended"]
        await call_with_events(store, "call_a", receiver.url, kinds)
        await call_with_events(store, "call_b", receiver.url, kinds)
        sender = worker(store)
        sender.start()
        try:
            await eventually_async(lambda: _delivered(store, 6), what="six events delivered")
        finally:
            await sender.aclose()
    assert receiver.unverified == []
    assert [r.status for r in receiver.received[:2]] == [500, 500]
    ids = [r.id for r in receiver.accepted]
    assert len(set(ids)) == 6  # each event exactly once
    retried = {r.id for r in receiver.received[:2]}
    assert retried <= set(ids)  # the failed ones came back with the same webhook-id
    for call_id in ("call_a", "call_b"):
        got = [r.type for r in receiver.accepted if r.data["call_id"] == call_id]
        assert got == kinds
    delivered = await store.outbox.deliveries(status="delivered")
    assert len(delivered) == 6
    assert sorted(d.attempts for d in delivered) == [1, 1, 1, 1, 2, 2]


async def test_a_receiver_down_for_a_while_gets_everything_when_it_returns(
    store: CallStore,
) -> None:
    async with Receiver(SECRET) as first:
        port, url = first.port, first.url
    await call_with_events(store, "call_a", url, ["call.started", "call.ended"])
    sender = worker(store)
    sender.start()
    try:
        failing = await eventually_async(
            lambda: _failed_attempts(store), what="attempts against a closed port", every_s=0.02
        )
        assert "ConnectError" in (failing.last_error or "")
        async with Receiver(SECRET, port=port) as receiver:
            await eventually(lambda: len(receiver.accepted) == 2, what="both events")
    finally:
        await sender.aclose()
    assert [r.type for r in receiver.accepted] == ["call.started", "call.ended"]


async def _delivered(store: CallStore, n: int) -> bool:
    return len(await store.outbox.deliveries(status="delivered")) == n


async def _failed_attempts(store: CallStore) -> Delivery | None:
    rows = await store.outbox.deliveries(status="pending")
    return next((d for d in rows if d.attempts >= 2), None)


async def test_given_up_events_fail_and_a_retry_by_hand_delivers_them(
    store: CallStore,
) -> None:
    policy = RetryPolicy(initial_s=0.05, max_delay_s=0.05, give_up_after_s=0.2, jitter=0.0)
    # only call.started fails: call.ended must get through once its head was given up (failing
    # every request until the test saw the give-up let call.ended be given up too on a busy box)
    fail = frozenset({"call.started"})
    async with Receiver(SECRET, fail_types=fail, fail_status=503) as receiver:
        await call_with_events(store, "call_a", receiver.url, ["call.started", "call.ended"])
        sender = worker(store, policy=policy)
        sender.start()
        try:
            failed = await eventually_async(
                lambda: store.outbox.deliveries(status="failed"), what="a given-up delivery"
            )
            assert failed[0].last_status_code == 503
            assert failed[0].last_error == "HTTP 503"
            # the chain moved on past the given-up head
            await eventually(lambda: receiver.accepted, what="call.ended delivered")
            assert [r.type for r in receiver.accepted] == ["call.ended"]
            receiver.fail_types = frozenset()
            await store.outbox.retry(failed[0].id, failed[0].created_at)
            sender.wake()
            await eventually(lambda: len(receiver.accepted) == 2, what="the retried event")
        finally:
            await sender.aclose()
    assert receiver.accepted[1].type == "call.started"
    assert receiver.accepted[1].id == failed[0].event_id


async def test_what_is_read_back_is_bounded_in_size_and_time(store: CallStore) -> None:
    async with Receiver(SECRET, fail_first=1, answer_bytes=1_000_000) as receiver:
        await call_with_events(store, "call_a", receiver.url, ["call.started"])
        sender = worker(store, max_response_bytes=100)
        sender.start()
        try:
            await eventually_async(lambda: _delivered(store, 1), what="the event delivered")
        finally:
            await sender.aclose()
    [row] = await store.outbox.deliveries()
    assert row.status == "delivered" and row.attempts == 2
    async with Receiver(SECRET, delay_s=5.0) as slow:
        await call_with_events(store, "call_b", slow.url, ["call.started"])
        sender = worker(store, timeout_s=0.2)
        try:
            assert await sender.run_once() == 1
        finally:
            await sender.aclose()
    [timed_out] = await store.outbox.deliveries(call_id="call_b")
    assert timed_out.status == "pending" and timed_out.last_error == "no answer within 0.2 s"


async def test_a_500_answer_is_kept_short_in_the_error(store: CallStore) -> None:
    async with Receiver(SECRET, fail_first=1, answer_bytes=10_000) as receiver:
        await call_with_events(store, "call_a", receiver.url, ["call.started"])
        sender = worker(store, max_response_bytes=64)
        try:
            await sender.run_once()
        finally:
            await sender.aclose()
    [row] = await store.outbox.deliveries()
    assert row.last_error == "HTTP 500: " + "x" * 64


async def test_redirects_are_not_followed(store: CallStore) -> None:
    async with Receiver(SECRET) as target, Receiver(SECRET, redirect_to=target.url) as hop:
        await call_with_events(store, "call_a", hop.url, ["call.started"])
        sender = worker(store)
        try:
            await sender.run_once()
        finally:
            await sender.aclose()
    assert target.received == []
    [row] = await store.outbox.deliveries()
    assert (row.status, row.last_status_code) == ("pending", 307)


async def test_without_a_secret_nothing_is_sent_and_the_reason_is_kept(
    store: CallStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with Receiver(SECRET) as receiver:
        await call_with_events(store, "call_a", receiver.url, ["call.started"])
        sender = worker(store, secret=None)
        with caplog.at_level(logging.ERROR):
            try:
                await sender.run_once()
            finally:
                await sender.aclose()
    assert receiver.received == []
    [row] = await store.outbox.deliveries()
    assert row.status == "pending"
    assert row.last_error == "not sent: SWITCHBOARD_WEBHOOK_SECRET is not set"
    assert "SWITCHBOARD_WEBHOOK_SECRET is not set" in caplog.text


async def test_logs_never_show_the_secret_or_the_urls_token(
    store: CallStore, caplog: pytest.LogCaptureFixture
) -> None:
    install_wire_redaction()  # as `serve` does: httpx logs each request's URL at INFO
    async with Receiver(SECRET, fail_first=1) as receiver:
        await call_with_events(store, "call_a", receiver.url, ["call.started"])
        sender = worker(store)
        with caplog.at_level(logging.DEBUG):
            sender.start()
            try:
                await eventually_async(lambda: _delivered(store, 1), what="the event delivered")
            finally:
                await sender.aclose()
    assert receiver.accepted
    assert "t0ps3cret" not in caplog.text
    assert SECRET[6:] not in caplog.text and SECRET not in caplog.text
    assert "/hooks/switchboard?…" in caplog.text


async def test_closing_right_after_a_wake_stops_the_worker(store: CallStore) -> None:
    """aclose() just after wake() (a call ended as the server shuts down) must not hang: on
    Python 3.11, asyncio.wait_for swallowed that cancel and the task ran on."""
    sender = worker(store)
    sender.start()
    await eventually(lambda: sender.sleeps >= 1, what="the worker asleep")
    sender.wake()
    await asyncio.wait_for(sender.aclose(), 5.0 * UNIT)
