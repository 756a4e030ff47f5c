"""GET /v1/calls, /v1/calls/{id} and /v1/usage over a real CallStore, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.backends import BACKENDS, database_target, migrated_store
from tests.recording_calls import RecordingCalls

from switchboard.app import create_app
from switchboard.catalog import load_catalog
from switchboard.config import load_settings
from switchboard.cost import estimate_call_cost
from switchboard.media import Usage
from switchboard.store import CallStore

pytestmark = pytest.mark.anyio

TOKEN = "calls-api-token"
T0 = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CallStore]:
    """The API reads the same on SQLite and PostgreSQL (skipped with the reason when absent)."""
    async with migrated_store(database_target(str(request.param), tmp_path)) as call_store:
        yield call_store


def build_app(tmp_path: Path, store: CallStore | None = None) -> FastAPI:
    settings = load_settings(
        SWITCHBOARD_API_TOKEN=TOKEN,
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        SWITCHBOARD_API_DOCS="true",  # the schema is served only when asked for
    )
    return create_app(settings, calls=RecordingCalls(), store=store)


@pytest.fixture
def app(store: CallStore, tmp_path: Path) -> FastAPI:
    return build_app(tmp_path, store)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as c:
        yield c


async def seed(store: CallStore) -> list[str]:
    """Five calls: three openai/twilio (one on the next day), one gemini/telnyx, one failed."""
    plan = [
        (T0, "twilio", "openai", "receptionist", "completed", 60.0),
        (T0 + timedelta(minutes=5), "twilio", "openai", "sales", "completed", 120.0),
        (T0 + timedelta(minutes=10), "telnyx", "gemini", "receptionist", "completed", 30.0),
        (T0 + timedelta(minutes=15), "twilio", "openai", "receptionist", "failed", None),
        (T0 + timedelta(days=1), "twilio", "openai", "receptionist", "completed", 90.0),
    ]
    ids: list[str] = []
    catalog = load_catalog()
    for n, (at, carrier, provider, agent, status, seconds) in enumerate(plan):
        record = await store.create_call(
            carrier=carrier,
            carrier_call_id=f"C{n}",
            from_number="+15550001111",
            to_number="+15550002222",
            provider=provider,
            agent=agent,
            created_at=at,
        )
        ids.append(record.id)
        recorder = store.recorder(record.id)
        if seconds is None:
            await recorder.finalize(status, "provider_error", error="upstream failed")
            continue
        recorder.record_update(answered_at=at)
        usage = Usage(input_audio_tokens=int(seconds * 10), output_audio_tokens=int(seconds * 20))
        cost = estimate_call_cost(
            catalog,
            provider=provider,
            model=None,
            usage=usage,
            carrier=carrier,
            carrier_seconds=seconds,
        )
        await recorder.finalize(
            status, "caller_hung_up", usage, cost, ended_at=at + timedelta(seconds=seconds)
        )
    assert store.writer.errors == []
    return ids


async def test_requires_token(client: httpx.AsyncClient) -> None:
    for path in ("/v1/calls", "/v1/calls/x", "/v1/usage"):
        response = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.json()["error"]["status"] == 401


async def test_list_newest_first_with_filters(client: httpx.AsyncClient, store: CallStore) -> None:
    ids = await seed(store)
    body = (await client.get("/v1/calls")).json()
    assert [c["id"] for c in body["items"]] == list(reversed(ids))
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert first["status"] == "completed"
    assert first["created_at"].startswith("2026-11-21T10:00:00")
    assert first["duration_s"] == pytest.approx(90.0)
    assert first["cost_total"] > 0

    async def ids_for(**params: Any) -> list[str]:
        response = await client.get("/v1/calls", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert await ids_for(status="failed") == [ids[3]]
    assert await ids_for(carrier="telnyx") == [ids[2]]
    assert await ids_for(provider="gemini") == [ids[2]]
    assert await ids_for(agent="sales") == [ids[1]]
    assert await ids_for(since="2026-11-20T10:05:00Z", until="2026-11-20T10:15:00Z") == [
        ids[2],
        ids[1],
    ]
    # naive timestamps are UTC
    assert await ids_for(since="2026-11-21T00:00:00") == [ids[4]]


async def test_cursor_pagination(client: httpx.AsyncClient, store: CallStore) -> None:
    ids = await seed(store)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        body = (await client.get("/v1/calls", params=params)).json()
        seen.extend(c["id"] for c in body["items"])
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == 3
    assert seen == list(reversed(ids))


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"status": "exploded"}, 422),
        ({"carrier": "acme"}, 422),
        ({"provider": "acme"}, 422),
        ({"limit": 201}, 422),
        ({"limit": 0}, 422),
        ({"since": "yesterday"}, 422),
        ({"since": "2026-11-21T00:00:00Z", "until": "2026-11-20T00:00:00Z"}, 400),
        ({"cursor": "garbage!"}, 400),
    ],
)
async def test_bad_filters_are_4xx(
    client: httpx.AsyncClient, params: dict[str, Any], status: int
) -> None:
    response = await client.get("/v1/calls", params=params)
    assert response.status_code == status
    assert response.json()["error"]["status"] == status


async def test_call_detail(client: httpx.AsyncClient, store: CallStore) -> None:
    ids = await seed(store)
    call_id = ids[0]
    recorder = store.recorder(call_id)
    recorder.record_transcript("agent", "Hello!", started_ms=0, ended_ms=800)
    recorder.record_transcript("caller", "Hi", started_ms=1000, ended_ms=1300)
    recorder.record_transcript("agent", "How can", started_ms=1800, interrupted=True)
    recorder.record_tool_call(
        "end_call", {"goodbye": "Bye"}, {"result": "ok"}, ok=True, duration_ms=4
    )
    recorder.record_timeline("barge_in", {"played_ms": 320})
    recorder.record_turn_latency(1, 512.0)
    await recorder.flush()

    response = await client.get(f"/v1/calls/{call_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == call_id
    assert [(t["role"], t["text"], t["interrupted"]) for t in body["transcript"]] == [
        ("agent", "Hello!", False),
        ("caller", "Hi", False),
        ("agent", "How can", True),
    ]
    assert body["tool_calls"][0]["arguments"] == {"goodbye": "Bye"}
    assert body["timeline"][0]["kind"] == "barge_in"
    assert body["latencies"] == [{"turn": 1, "latency_ms": 512.0}]
    assert body["usage"]["input_audio_tokens"] == 600
    cost = body["cost"]
    assert cost["currency"] == "USD"
    assert cost["prices_as_of"] == "2026-11-01"
    assert cost["total"] == pytest.approx(sum(line["amount"] for line in cost["lines"]))
    assert any(line["text"].startswith("twilio call minutes: 1 × ") for line in cost["lines"])


async def test_unknown_call_is_json_404(client: httpx.AsyncClient, store: CallStore) -> None:
    response = await client.get("/v1/calls/call_nope")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no call 'call_nope'"


async def test_usage_by_day_and_provider(client: httpx.AsyncClient, store: CallStore) -> None:
    await seed(store)
    body = (await client.get("/v1/usage")).json()
    assert body["group_by"] == ["day", "provider"]
    rows = [(r["day"], r["provider"], r["calls"], r["minutes"]) for r in body["rows"]]
    assert rows == [
        ("2026-11-20", "gemini", 1, 0.5),
        ("2026-11-20", "openai", 3, 3.0),
        ("2026-11-21", "openai", 1, 1.5),
    ]
    assert body["total_calls"] == 5
    assert body["total_minutes"] == pytest.approx(5.0)
    assert body["total_cost"] == pytest.approx(sum(r["cost"] for r in body["rows"]))
    by_carrier = (
        await client.get("/v1/usage", params={"group_by": "carrier", "until": "2026-11-21"})
    ).json()
    assert [(r["carrier"], r["calls"]) for r in by_carrier["rows"]] == [
        ("telnyx", 1),
        ("twilio", 3),
    ]
    bad = await client.get("/v1/usage", params={"group_by": "colour"})
    assert bad.status_code == 422


async def test_no_store_is_503(tmp_path: Path) -> None:
    bare = build_app(tmp_path)
    state = bare.state.switchboard  # a gateway without a store
    bare.state.switchboard = replace(state, gateway=replace(state.gateway, store=None))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bare),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as c:
        response = await c.get("/v1/calls")
    assert response.status_code == 503
    assert "not configured" in response.json()["error"]["message"]


async def test_openapi_documents_the_models(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"/v1/calls", "/v1/calls/{call_id}", "/v1/usage"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    for name in ("CallListOut", "CallDetailOut", "UsageSummaryOut", "CostOut", "TranscriptOut"):
        assert name in components
    params = {p["name"] for p in schema["paths"]["/v1/calls"]["get"]["parameters"]}
    assert {"status", "carrier", "provider", "agent", "since", "until", "limit", "cursor"} <= params
