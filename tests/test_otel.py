"""OpenTelemetry traces, checked with the SDK's in-memory span exporter.

Unit tests drive a :class:`TracingSink` with what a session reports; the end-to-end test runs one
emulated call (simulated Twilio caller → app → OpenAI Realtime emulator) with tracing on and
checks the call span and its children.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from switchboard.audio import pcm16_to_ulaw
from switchboard.bridge.sink import MemorySink
from switchboard.config import load_settings
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.errors import ProviderError
from switchboard.media import Usage
from switchboard.metrics import Metrics
from switchboard.providers.base import ProviderEventType
from switchboard.tools import ToolResult
from switchboard.tracing import Tracing, TracingSink
from tests.e2e.harness import caller_pcm, openai_env, read_only_call, running_app, twilio_env


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    yield spans
    spans.shutdown()


def tracing_for(exporter: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(tracer_provider=provider)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def children_of(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_sink_turns_reports_into_child_spans(exporter: InMemorySpanExporter) -> None:
    tracing = tracing_for(exporter)
    tracing.call_started("call_1", carrier="twilio", provider="openai", model="gpt-realtime")
    inner = Metrics().call_sink(MemorySink(), carrier="twilio", provider="openai", model="m")
    sink = tracing.call_sink("call_1", inner)
    assert isinstance(sink, TracingSink)
    sink.timeline("call.started", 1000.0, {})
    sink.timeline("caller.speech_stopped", 2000.0, {})
    sink.timeline("reply.first_audio", 2600.0, {"reply": 1})
    sink.turn_latency(1, 600.0)
    sink.timeline("barge_in", 3000.0, {"played_ms": 400, "source": "caller_speech"})
    sink.timeline("response.done", 3100.0, {"status": "cancelled"})
    sink.timeline("provider.reconnecting", 4000.0, {"attempt": 1})
    sink.timeline("provider.reconnected", 4500.0, {"attempt": 1})
    sink.tool_call(ToolResult("lookup", ok=False, error="no such order", duration_ms=50.0), 5000.0)
    sink.usage(Usage(output_audio_tokens=10))
    # The session's provider_event hook still reaches the metrics sink underneath.
    sink.provider_event(ProviderEventType.AUDIO_OUTPUT, 2500.0)
    tracing.call_ended("call_1", "agent_hangup", usage=sink.total_usage)

    spans = tuple(exporter.get_finished_spans())
    (call,) = by_name(spans, "call")
    assert call.attributes is not None
    assert call.attributes["switchboard.call_id"] == "call_1"
    assert call.attributes["switchboard.end_reason"] == "agent_hangup"
    assert call.attributes["switchboard.usage.output_audio_tokens"] == 10
    assert call.status.status_code is StatusCode.UNSET
    assert {"call.started", "barge_in", "provider.reconnecting"} <= {e.name for e in call.events}
    children = {span.name: span for span in children_of(spans, call)}
    assert set(children) == {"turn", "provider.reconnect", "tool lookup"}
    turn = children["turn"]
    assert turn.start_time is not None and turn.end_time is not None
    assert (turn.end_time - turn.start_time) / 1e6 == pytest.approx(1100.0, abs=1.0)
    assert turn.attributes is not None and turn.attributes["switchboard.turn_latency_ms"] == 600.0
    assert [e.name for e in turn.events] == ["first_audio", "barge_in"]
    reconnect = children["provider.reconnect"]
    assert reconnect.start_time is not None and reconnect.end_time is not None
    assert (reconnect.end_time - reconnect.start_time) / 1e6 == pytest.approx(500.0, abs=1.0)
    tool = children["tool lookup"]
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.start_time is not None and tool.end_time is not None
    assert (tool.end_time - tool.start_time) / 1e6 == pytest.approx(50.0, abs=1.0)
    # Metrics and the record sink underneath saw everything.
    assert isinstance(inner.inner, MemorySink) and len(inner.inner.tools) == 1
    assert inner.total_usage.output_audio_tokens == 10


def test_failed_call_and_open_spans_end_with_it(exporter: InMemorySpanExporter) -> None:
    tracing = tracing_for(exporter)
    tracing.call_started("call_2", carrier="telnyx", provider="gemini")
    with pytest.raises(ProviderError), tracing.span("call_2", "provider.connect"):
        raise ProviderError("handshake refused")
    sink = tracing.call_sink("call_2", None)
    assert isinstance(sink, TracingSink)
    sink.timeline("caller.speech_stopped", 1000.0, {})
    sink.timeline("provider.reconnecting", 1200.0, {})
    tracing.call_ended("call_2", "provider_failed")
    spans = tuple(exporter.get_finished_spans())
    (call,) = by_name(spans, "call")
    assert call.status.status_code is StatusCode.ERROR
    (connect,) = by_name(spans, "provider.connect")
    assert connect.status.status_code is StatusCode.ERROR
    assert any(event.name == "exception" for event in connect.events)
    assert by_name(spans, "provider.reconnect")[0].status.status_code is StatusCode.ERROR
    assert len(by_name(spans, "turn")) == 1
    assert all(span.end_time is not None for span in spans)


def test_unknown_calls_are_not_traced(exporter: InMemorySpanExporter) -> None:
    tracing = tracing_for(exporter)
    inner = MemorySink()
    assert tracing.call_sink("nope", inner) is inner
    with tracing.span("nope", "provider.connect"):
        pass
    tracing.call_ended("nope", "completed")
    assert exporter.get_finished_spans() == ()


def test_off_by_default(tmp_path: Path) -> None:
    from switchboard.app.factory import create_app

    db = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    off = create_app(load_settings(SWITCHBOARD_DATABASE_URL=db))
    on = create_app(load_settings(SWITCHBOARD_DATABASE_URL=db, SWITCHBOARD_OTEL="1"))
    assert off.state.switchboard.gateway.tracing is None
    assert isinstance(on.state.switchboard.gateway.tracing, Tracing)


@pytest.mark.anyio
@pytest.mark.e2e
async def test_an_emulated_call_is_one_trace(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    script: list[dict[str, Any]] = [
        {"caller": "what are your opening hours", "say": "We are open nine to five."},
        {"caller": "thanks bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
    ]
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        tracing = tracing_for(exporter)
        async with running_app(tmp_path, env, tracing=tracing) as (base, _settings, _app):
            pcm = caller_pcm("what are your opening hours", "thanks bye", gap_ms=[1500, 4000])
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await twilio.wait_calls(timeout_s=40)
    detail = await read_only_call(tmp_path)
    spans = tuple(exporter.get_finished_spans())
    (call,) = by_name(spans, "call")
    assert call.attributes is not None
    assert call.attributes["switchboard.call_id"] == detail.record.id
    assert call.attributes["switchboard.end_reason"] == "agent_hangup"
    assert call.attributes["switchboard.provider"] == "openai"
    names = sorted(span.name for span in children_of(spans, call))
    assert names == ["provider.connect", "tool end_call", "turn", "turn"]
    turns = by_name(spans, "turn")
    latencies = sorted(lat.latency_ms for lat in detail.latencies)
    traced = [t.attributes.get("switchboard.turn_latency_ms") for t in turns if t.attributes]
    assert sorted(float(v) for v in traced if isinstance(v, int | float)) == pytest.approx(
        latencies, abs=0.1
    )
    event_names = [event.name for event in call.events]
    assert event_names[0] == "call.started" and event_names[-1] == "call.ended"
    assert "tool.call" in event_names and "hangup.requested" in event_names
    assert {span.context.trace_id for span in spans if span.context} == {
        call.context.trace_id if call.context else 0
    }
