"""End to end over loopback: what one call leaves in ``/metrics`` and in the logs.

A simulated Twilio caller talks to the app bridged to the OpenAI Realtime emulator, with the
root logger writing JSON lines into a buffer (``configure_logging(stream=...)`` given no secrets to
mask, so a secret reaching a log call at all would show). Then ``GET /metrics`` is parsed with
``prometheus_client``'s own parser and checked for the numbers that call must have produced.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from switchboard.emulators.twilio import TwilioEmulator
from switchboard.logs import configure_logging
from switchboard.store.render import render_call_detail
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    caller_pcm,
    openai_twilio_app,
    place_twilio_call,
    read_only_call,
    running_app,
    telnyx_env,
    twilio_env,
)
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

OPENAI_KEY = "sk-supersecret-openai-key"
TWILIO_TOKEN = "twilio-supersecret-auth-token"
SECRETS = (OPENAI_KEY, TWILIO_TOKEN, API_TOKEN)
KEYS: dict[str, Any] = {"openai_key": OPENAI_KEY, "twilio_token": TWILIO_TOKEN}
LONG_REPLY = (
    "Let me tell you all about our many services, our opening hours on every single day of "
    "the week, and the history of this fine establishment since it first opened."
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextmanager
def json_logs(level: str) -> Iterator[io.StringIO]:
    """Route every log record into a buffer as JSON lines; restore logging afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging(level=level, fmt="json", stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for part in level.split(",")[1:]:
            logging.getLogger(part.partition("=")[0].strip()).setLevel(logging.NOTSET)


async def scrape(base: str) -> Samples:
    """``GET /metrics`` (from loopback, no token set) parsed into {(sample, labels): value}."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape_after_call(base: str) -> Samples:
    """Metrics once the call's end has been counted (the caller may hang up first)."""

    async def counted() -> Samples | None:
        samples = await scrape(base)
        return samples if total(samples, "switchboard_calls_total") >= 1 else None

    return await eventually_async(counted, what="the call's end counted", every_s=0.05)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= lab)


async def api_timeline(base: str, call_id: str) -> list[dict[str, Any]]:
    """``GET /v1/calls/{id}``'s timeline, once the call's end is recorded."""
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(headers=headers) as client:

        async def ended() -> list[dict[str, Any]] | None:
            response = await client.get(f"{base}/v1/calls/{call_id}")
            assert response.status_code == 200, response.text
            timeline: list[dict[str, Any]] = response.json()["timeline"]
            return timeline if timeline and timeline[-1]["kind"] == "call.ended" else None

        return await eventually_async(ended, what="call.ended in the timeline", every_s=0.05)


def read_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


async def test_metrics_and_logs_of_a_call_ended_by_a_tool(tmp_path: Path) -> None:
    script: list[dict[str, Any]] = [
        {"caller": "what are your opening hours", "say": "We are open nine to five."},
        {"caller": "thanks bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
    ]
    level = "INFO,switchboard=DEBUG,websockets=DEBUG,httpx=DEBUG"
    with json_logs(level) as buffer:
        async with openai_twilio_app(tmp_path, script, **KEYS) as (oai, twilio, base):
            pcm = caller_pcm("what are your opening hours", "thanks bye", gap_ms=[1500, 4000])
            report = await place_twilio_call(twilio, base, pcm)
            samples = await scrape_after_call(base)
            call_id = (await read_only_call(tmp_path)).record.id
            timeline = await api_timeline(base, call_id)
    assert report.violations == [] and oai.violations == []
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "agent_hangup"

    labels = {"carrier": "twilio", "provider": "openai"}
    assert total(samples, "switchboard_calls_total", outcome="agent_hangup", **labels) == 1
    assert total(samples, "switchboard_calls_total") == 1
    assert total(samples, "switchboard_active_calls") == 0
    turns = len(detail.latencies)
    assert turns == 2
    assert total(samples, "switchboard_turn_latency_seconds_count", **labels) == turns
    latency_sum = sum(lat.latency_ms for lat in detail.latencies) / 1000.0
    assert total(samples, "switchboard_turn_latency_seconds_sum") == pytest.approx(
        latency_sum, abs=0.01
    )
    # Both caller turns were answered with audio and transcribed by the provider.
    assert total(samples, "switchboard_provider_first_audio_seconds_count", provider="openai") == 2
    assert total(samples, "switchboard_provider_first_transcript_seconds_count") == 2
    assert total(samples, "switchboard_tool_calls_total", tool="end_call") == 1
    assert total(samples, "switchboard_tool_errors_total") == 0
    assert total(samples, "switchboard_tool_duration_seconds_count", tool="end_call") == 1
    assert total(samples, "switchboard_barge_ins_total") == 0
    assert total(samples, "switchboard_provider_reconnects_total") == 0
    frames_in = total(samples, "switchboard_media_frames_total", direction="in")
    frames_out = total(samples, "switchboard_media_frames_total", direction="out")
    # The app's codec counted what the caller sent and received (a frame may be in flight);
    # Twilio's codec counts every inbound message: media, marks echoed, connected/start/stop.
    assert report.frames_sent - 2 <= frames_in <= report.frames_sent + report.marks_acked + 3
    assert report.frames_received <= frames_out <= report.frames_received + 2
    assert frames_in > 100 and frames_out > 0
    assert total(samples, "switchboard_estimated_cost_usd_total", provider="openai") > 0
    record_cost = detail.record.cost_total or 0.0
    both = total(samples, "switchboard_estimated_cost_usd_total") + total(
        samples, "switchboard_estimated_telephony_cost_usd_total"
    )
    assert both == pytest.approx(record_cost, rel=0.01)
    assert total(samples, "switchboard_event_loop_lag_observed_seconds_count") >= 1

    # The timeline shows the call's lifecycle, turns and tool call with relative times.
    kinds = [event["kind"] for event in timeline]
    for kind in ("call.created", "media.started", "call.started", "caller.speech_stopped"):
        assert kind in kinds
    for kind in ("reply.first_audio", "tool.call", "hangup.requested", "call.ended"):
        assert kind in kinds
    assert kinds.index("call.started") < kinds.index("tool.call") < kinds.index("call.ended")
    offsets = [event["t_ms"] for event in timeline]
    assert offsets[0] == 0 and offsets[-1] == max(offsets) > 3000
    tool_at = offsets[kinds.index("tool.call")]
    assert offsets[kinds.index("call.started")] <= tool_at <= offsets[-1]
    shown = io.StringIO()
    Console(file=shown, width=160).print(render_call_detail(detail))
    assert "+ms" in shown.getvalue() and "hangup.requested" in shown.getvalue()

    lines = read_lines(buffer)
    text = buffer.getvalue()
    for secret in SECRETS:
        assert secret not in text, f"a secret reached the logs: {secret[:6]}…"
    assert not re.search(r"[A-Za-z0-9+/]{200,}", text), "audio (base64) reached the logs"
    ours = [line for line in lines if line["logger"].startswith("switchboard.")]
    about_call = [line for line in ours if call_id in line["message"]]
    assert about_call, "no log line names the call"
    for line in about_call:
        assert line.get("call_id") == call_id, line
    session_lines = [line for line in lines if line["logger"] == "switchboard.bridge.session"]
    assert session_lines and all(line.get("call_id") == call_id for line in session_lines)
    # The provider session and the carrier REST client do not know the call, but run in its
    # tasks: their lines carry its id too (only this one call runs in this test).
    in_call = ("switchboard.providers.", "switchboard.telephony.", "switchboard.tools.")
    for line in lines:
        if line["logger"].startswith(in_call):
            assert line.get("call_id") == call_id, line
    assert any(line["logger"].startswith("switchboard.providers.") for line in lines)
    assert any(line["logger"].startswith("switchboard.telephony.") for line in lines)
    debug = [line for line in lines if line["level"] == "debug"]
    assert any(line["logger"].startswith("switchboard.") for line in debug)


async def test_barge_in_is_counted_once(tmp_path: Path) -> None:
    script = [
        {"caller": "tell me everything", "say": LONG_REPLY},
        {"caller": "stop please", "say": "Sorry, go ahead."},
    ]
    with json_logs("WARNING") as buffer:
        async with openai_twilio_app(tmp_path, script, **KEYS) as (oai, twilio, base):
            pcm = caller_pcm("tell me everything", "stop please", gap_ms=[1800, 2500])
            report = await place_twilio_call(twilio, base, pcm)
            samples = await scrape_after_call(base)
    assert oai.violations == []
    assert report.clears >= 1
    detail = await read_only_call(tmp_path)
    barges = [e for e in detail.timeline if e.kind == "barge_in"]
    assert len(barges) == 1
    assert total(samples, "switchboard_barge_ins_total", provider="openai") == 1
    outcome = detail.record.end_reason or ""
    assert total(samples, "switchboard_calls_total", outcome=outcome) == 1
    assert all(line["level"] in ("warning", "error", "critical") for line in read_lines(buffer))


@pytest.mark.parametrize(("carrier", "provider"), [("twilio", "gemini"), ("telnyx", "deepgram")])
async def test_call_metrics_for_other_providers(
    tmp_path: Path, carrier: str, provider: str
) -> None:
    """Gemini sends no speech events (the bridge infers the turn from the caller's voice) and
    Deepgram is a pipeline: both still give one latency sample per turn and a provider
    first-audio time per answer."""
    from contextlib import AsyncExitStack

    from switchboard.emulators.telnyx import TelnyxEmulator
    from tests.e2e.harness import caller_wav
    from tests.e2e.test_pairs import GAPS, UTTERANCES, provider_env

    async with AsyncExitStack() as stack, provider_env(provider, stack) as providers:
        env = providers.env | {"SWITCHBOARD_PROVIDER": provider}
        if carrier == "twilio":
            twilio = await stack.enter_async_context(TwilioEmulator())
            env |= twilio_env(twilio)
        else:
            telnyx = await stack.enter_async_context(TelnyxEmulator(tail_ms=8000))
            env |= telnyx_env(telnyx)
        async with running_app(tmp_path, env) as (base, _settings, _app):
            if carrier == "twilio":
                await place_twilio_call(twilio, base, caller_pcm(*UTTERANCES, gap_ms=GAPS))
            else:
                call = await telnyx.place_inbound_call(
                    to="+15550100000",
                    from_="+15550111111",
                    audio=caller_wav(*UTTERANCES, gap_ms=GAPS),
                    webhook_url=f"{base}/telnyx/webhook",
                )
                await call.wait(40 * UNIT)
            samples = await scrape_after_call(base)
    detail = await read_only_call(tmp_path)
    labels = {"carrier": carrier, "provider": provider}
    assert total(samples, "switchboard_calls_total", outcome="agent_hangup", **labels) == 1
    assert len(detail.latencies) == 2
    assert total(samples, "switchboard_turn_latency_seconds_count", **labels) == 2
    assert total(samples, "switchboard_provider_first_audio_seconds_count", provider=provider) == 2
    assert total(samples, "switchboard_tool_calls_total", tool="end_call") == 1
    assert total(samples, "switchboard_media_frames_total", carrier=carrier, direction="in") > 0
    assert total(samples, "switchboard_estimated_cost_usd_total", provider=provider) > 0
