"""Metrics: the sink's derivations, the per-app registry, ``/metrics`` protection, rejections.

The app is driven in-process through ``httpx.ASGITransport`` (with the client address chosen per
test) and scraped output parsed with ``prometheus_client``'s own parser.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from switchboard.app.factory import create_app
from switchboard.app.metrics_api import metrics_of
from switchboard.app.state import AppState
from switchboard.bridge.sink import MemorySink
from switchboard.config import load_settings
from switchboard.media import Usage
from switchboard.metrics import MAX_LABEL_VALUES, Metrics, rejection_reason
from switchboard.providers.base import ProviderEventType
from switchboard.tools import ToolResult
from tests.waiting import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= lab)


def scrape(metrics: Metrics) -> Samples:
    return parse(metrics.render().decode())


def app_for(tmp_path: Path, **env: Any) -> FastAPI:
    # A loopback public URL: a public one turns loopback trust off (tests/app/test_security_edge).
    settings = load_settings(
        **{
            "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            "SWITCHBOARD_PUBLIC_URL": "http://127.0.0.1:8080",
            **env,
        }
    )
    return create_app(settings)


@asynccontextmanager
async def client_from(app: FastAPI, host: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://sb.test") as client:
        yield client


def state_of(app: FastAPI) -> AppState:
    state: AppState = app.state.switchboard
    return state


# -- the sink ----------------------------------------------------------------------------------
def test_sink_counts_what_the_call_reports_and_forwards_it() -> None:
    metrics = Metrics(turn_latency_buckets_ms=[100, 500, 1000])
    inner = MemorySink()
    sink = metrics.call_sink(inner, carrier="twilio", provider="openai", model="gpt-realtime")
    sink.timeline("caller.speech_stopped", 1000.0, {})
    sink.provider_event(ProviderEventType.CALLER_TRANSCRIPT, 1150.0)
    sink.provider_event(ProviderEventType.AUDIO_OUTPUT, 1400.0)
    sink.provider_event(ProviderEventType.AUDIO_OUTPUT, 1420.0)  # not a first byte
    sink.turn_latency(1, 450.0)
    sink.timeline("barge_in", 2000.0, {"played_ms": 300, "source": "caller_speech"})
    sink.timeline("provider.reconnecting", 3000.0, {"attempt": 1})
    sink.timeline("provider.error", 3100.0, {"code": "rate_limit_exceeded", "fatal": False})
    sink.timeline("provider.error", 3200.0, {"code": None})
    sink.tool_call(ToolResult("lookup", ok=True, duration_ms=12.0), 4000.0)
    sink.tool_call(ToolResult("lookup", ok=False, error="boom", duration_ms=3.0), 4100.0)
    sink.usage(Usage(output_audio_tokens=100))
    sink.usage(Usage(output_audio_tokens=50))
    sink.transcript("agent", "hello", 5000.0, False)

    s = scrape(metrics)
    first_audio = ("switchboard_provider_first_audio_seconds", "gpt-realtime")
    assert value(s, first_audio[0] + "_count", provider="openai", model=first_audio[1]) == 1
    assert value(s, first_audio[0] + "_sum") == pytest.approx(0.4)
    assert value(s, "switchboard_provider_first_transcript_seconds_sum") == pytest.approx(0.15)
    assert value(s, "switchboard_turn_latency_seconds_count", carrier="twilio") == 1
    assert value(s, "switchboard_turn_latency_seconds_bucket", le="0.5") == 1
    assert value(s, "switchboard_turn_latency_seconds_bucket", le="0.1") == 0
    assert value(s, "switchboard_barge_ins_total", provider="openai") == 1
    assert value(s, "switchboard_provider_reconnects_total", provider="openai") == 1
    assert value(s, "switchboard_provider_errors_total", code="rate_limit_exceeded") == 1
    assert value(s, "switchboard_provider_errors_total", code="unknown") == 1
    assert value(s, "switchboard_tool_calls_total", tool="lookup") == 2
    assert value(s, "switchboard_tool_errors_total", tool="lookup") == 1
    assert value(s, "switchboard_tool_duration_seconds_sum", tool="lookup") == pytest.approx(0.015)
    assert sink.total_usage.output_audio_tokens == 150
    # Everything reached the record sink unchanged.
    assert [kind for kind, _, _ in inner.timelines][:2] == ["caller.speech_stopped", "barge_in"]
    assert inner.latencies == [(1, 450.0)]
    assert len(inner.tools) == 2
    assert inner.total_usage.output_audio_tokens == 150
    assert inner.transcripts == [("agent", "hello", 5000.0, False)]


def test_a_new_utterance_cancels_an_unanswered_wait() -> None:
    metrics = Metrics()
    sink = metrics.call_sink(None, carrier="telnyx", provider="deepgram", model=None)
    sink.timeline("caller.speech_stopped", 1000.0, {})
    sink.timeline("caller.speech_started", 1500.0, {})
    sink.provider_event(ProviderEventType.AUDIO_OUTPUT, 9000.0)  # greeting/reprompt audio
    assert value(scrape(metrics), "switchboard_provider_first_audio_seconds_count") == 0


def test_call_end_counts_outcome_media_and_cost() -> None:
    settings = load_settings()
    metrics = Metrics.from_catalog(settings.catalog)
    metrics.call_started()
    metrics.call_started()
    sink = metrics.call_sink(None, carrier="twilio", provider="openai", model=None)
    sink.usage(Usage(input_audio_tokens=1000, output_audio_tokens=2000))
    stats = {"frames_in": 500, "frames_out": 400, "late": 2, "dropped": 1, "reordered": 3}
    metrics.call_ended(
        carrier="twilio",
        provider="openai",
        model=None,
        reason="agent_hangup",
        sink=sink,
        media=stats,
    )
    metrics.call_ended(carrier="twilio", provider="openai", model=None, reason="no_media")
    s = scrape(metrics)
    assert value(s, "switchboard_active_calls") == 0
    assert value(s, "switchboard_calls_total", outcome="agent_hangup", carrier="twilio") == 1
    assert value(s, "switchboard_calls_total", outcome="no_media") == 1
    assert value(s, "switchboard_media_frames_total", direction="in") == 500
    assert value(s, "switchboard_media_frames_total", direction="out") == 400
    assert value(s, "switchboard_media_frame_problems_total", kind="late") == 2
    assert value(s, "switchboard_media_frame_problems_total", kind="dropped") == 1
    assert value(s, "switchboard_media_frame_problems_total", kind="reordered") == 3
    prices = settings.catalog.providers["openai"]
    tokens = prices.models[prices.default_model].prices.per_million_tokens
    expected = (1000 * tokens["input_audio"] + 2000 * tokens["output_audio"]) / 1e6
    assert value(s, "switchboard_estimated_cost_usd_total", provider="openai") == pytest.approx(
        expected
    )
    # A started minute at the carrier is billed.
    assert value(s, "switchboard_estimated_telephony_cost_usd_total", carrier="twilio") > 0


@pytest.mark.parametrize(
    ("why", "label"),
    [
        ("missing X-Twilio-Signature", "missing_signature"),
        ("HMAC-SHA1 signature does not match https://x/twilio/voice", "bad_signature"),
        ("replayed request", "replay"),
        ("duplicate status completed for CA1", "replay"),
        ("media token rejected: expired", "bad_token"),
        ("no key configured for HMAC-SHA256 signatures", "no_key"),
        ("AccountSid AC9 is not ours", "wrong_account"),
        ("binary frame before start", "invalid_request"),
    ],
)
def test_rejection_reasons_are_low_cardinality(why: str, label: str) -> None:
    assert rejection_reason(why) == label


def hog_the_loop(seconds: float) -> None:
    """Blocking work on the event loop's thread (what a CPU-heavy call would do)."""
    time.sleep(seconds)


@pytest.mark.anyio
async def test_event_loop_lag_is_measured() -> None:
    metrics = Metrics()
    watch = asyncio.get_running_loop().create_task(metrics.watch_event_loop(0.01))

    def observed(name: str) -> float:
        return value(scrape(metrics), f"switchboard_event_loop_lag_observed_seconds_{name}")

    await eventually(lambda: observed("count") >= 1, what="a first measurement")
    hog_the_loop(0.05)  # the watcher, asleep again, wakes late
    await eventually(lambda: observed("sum") >= 0.03, what="the late wake-up measured")
    watch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watch
    s = scrape(metrics)
    assert value(s, "switchboard_event_loop_lag_observed_seconds_count") >= 1
    assert value(s, "switchboard_event_loop_lag_observed_seconds_sum") >= 0.03


@pytest.mark.anyio
async def test_event_loop_tasks_are_counted() -> None:
    metrics = Metrics()
    loop = asyncio.get_running_loop()
    watch = loop.create_task(metrics.watch_event_loop(0.01))

    def tasks() -> float:
        return value(scrape(metrics), "switchboard_event_loop_tasks")

    await eventually(lambda: tasks() >= 1, what="a first count")
    before = tasks()
    sleepers = [loop.create_task(asyncio.sleep(60)) for _ in range(20)]
    await eventually(lambda: tasks() == before + 20, what="the sleepers counted")
    for task in sleepers:
        task.cancel()
    await asyncio.gather(*sleepers, return_exceptions=True)
    await eventually(lambda: tasks() == before, what="back to the count before")
    watch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watch


# -- the endpoint ------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_without_a_token_only_loopback_may_scrape(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    for host in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        async with client_from(app, host) as client:
            response = await client.get("/metrics")
        assert response.status_code == 200, host
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "switchboard_active_calls 0.0" in response.text
    for host in ("10.0.0.7", "203.0.113.9", "2001:db8::1", "testclient"):
        async with client_from(app, host) as client:
            response = await client.get("/metrics")
        assert response.status_code == 403, host
        assert "SWITCHBOARD_METRICS_TOKEN" in response.text


@pytest.mark.anyio
async def test_with_a_token_it_is_required_from_anywhere(tmp_path: Path) -> None:
    app = app_for(tmp_path, SWITCHBOARD_METRICS_TOKEN="scrape-secret-token")
    for host in ("127.0.0.1", "10.0.0.7"):
        async with client_from(app, host) as client:
            assert (await client.get("/metrics")).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert (await client.get("/metrics", headers=wrong)).status_code == 401
            right = {"Authorization": "Bearer scrape-secret-token"}
            response = await client.get("/metrics", headers=right)
            assert response.status_code == 200
            assert "switchboard_active_calls" in response.text


@pytest.mark.anyio
async def test_metrics_can_be_disabled_in_the_catalogue(tmp_path: Path) -> None:
    packaged = files("switchboard").joinpath("providers.yaml").read_text(encoding="utf-8")
    assert "metrics_enabled: true" in packaged
    config = tmp_path / "providers.yaml"
    config.write_text(packaged.replace("metrics_enabled: true", "metrics_enabled: false"))
    app = app_for(tmp_path, SWITCHBOARD_CONFIG=str(config))
    assert metrics_of(state_of(app)) is None
    async with client_from(app, "127.0.0.1") as client:
        assert (await client.get("/metrics")).status_code == 404


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    first, second = app_for(tmp_path), app_for(tmp_path)
    one, two = metrics_of(state_of(first)), metrics_of(state_of(second))
    assert one is not None and two is not None and one.registry is not two.registry
    one.call_started()
    assert value(scrape(one), "switchboard_active_calls") == 1
    assert value(scrape(two), "switchboard_active_calls") == 0


# -- webhook rejections -------------------------------------------------------------------------
@pytest.mark.anyio
async def test_twilio_signature_rejections_are_counted_by_reason(tmp_path: Path) -> None:
    app = app_for(tmp_path, TWILIO_AUTH_TOKEN="twilio-token", TWILIO_ACCOUNT_SID="AC" + "1" * 32)
    form = {"CallSid": "CA1", "From": "+15550100", "To": "+15550199"}
    async with client_from(app, "127.0.0.1") as client:
        missing = await client.post("/twilio/voice", data=form)
        bad = await client.post("/twilio/voice", data=form, headers={"X-Twilio-Signature": "AAAA"})
        scraped = parse((await client.get("/metrics")).text)
    assert missing.status_code == bad.status_code == 403
    name = "switchboard_webhook_rejections_total"
    assert value(scraped, name, carrier="twilio", reason="missing_signature") == 1
    assert value(scraped, name, carrier="twilio", reason="bad_signature") == 1


@pytest.mark.anyio
async def test_telnyx_signature_rejections_are_counted(tmp_path: Path) -> None:
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    app = app_for(
        tmp_path,
        TELNYX_API_KEY="telnyx-key",
        TELNYX_PUBLIC_KEY=base64.b64encode(public).decode(),
    )
    headers = {
        "telnyx-signature-ed25519": base64.b64encode(b"x" * 64).decode(),
        "telnyx-timestamp": "1700000000",
    }
    async with client_from(app, "127.0.0.1") as client:
        response = await client.post("/telnyx/webhook", content=b"{}", headers=headers)
        scraped = parse((await client.get("/metrics")).text)
    assert response.status_code == 403
    name = "switchboard_webhook_rejections_total"
    assert value(scraped, name, carrier="telnyx") == 1
    assert value(scraped, name, carrier="telnyx", reason="invalid_request") == 0


def test_free_form_labels_are_bounded() -> None:
    metrics = Metrics()
    sink = metrics.call_sink(None, carrier="twilio", provider="openai", model="m")
    for n in range(MAX_LABEL_VALUES + 10):
        sink.tool_call(ToolResult(f"made_up_{n}", ok=False, error="unknown tool"), 0.0)
    sink.tool_call(ToolResult("made_up_0", ok=True), 0.0)
    s = scrape(metrics)
    tools = {dict(labels)["tool"] for (name, labels) in s if name == "switchboard_tool_calls_total"}
    assert len(tools) == MAX_LABEL_VALUES + 1 and "other" in tools
    assert value(s, "switchboard_tool_calls_total", tool="other") == 10
    assert value(s, "switchboard_tool_calls_total", tool="made_up_0") == 2
