"""The sink chain a call reports through: record ← metrics ← tracing, all one protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.bridge.sink import CallSink, MemorySink
from switchboard.media import Usage
from switchboard.metrics import Metrics
from switchboard.providers.events import ProviderEventType
from switchboard.tracing import Tracing, TracingSink


@dataclass
class TimingSink(MemorySink):
    """A record sink that also keeps the provider events it is told about."""

    events: list[tuple[ProviderEventType, float]] = field(default_factory=list)

    def provider_event(self, kind: ProviderEventType, at_ms: float) -> None:
        self.events.append((kind, at_ms))


def test_provider_events_are_a_no_op_for_a_sink_that_does_not_time_them() -> None:
    sink: CallSink = MemorySink()
    sink.provider_event(ProviderEventType.AUDIO_OUTPUT, 10.0)
    assert sink == MemorySink()  # nothing recorded


def test_every_report_goes_down_the_chain() -> None:
    record = TimingSink()
    metered = Metrics().call_sink(record, carrier="twilio", provider="openai", model="m")
    tracing = Tracing()
    tracing.call_started("call_1", carrier="twilio", provider="openai")
    outer = tracing.call_sink("call_1", metered)
    assert isinstance(outer, TracingSink)
    outer.provider_event(ProviderEventType.AUDIO_OUTPUT, 1500.0)
    outer.usage(Usage(output_audio_tokens=7))
    outer.timeline("barge_in", 1600.0, {"played_ms": 100})
    assert record.events == [(ProviderEventType.AUDIO_OUTPUT, 1500.0)]
    assert record.total_usage.output_audio_tokens == 7
    assert metered.total_usage.output_audio_tokens == 7
    assert outer.total_usage.output_audio_tokens == 7  # the trace's own count, for its span
    assert [kind for kind, _, _ in record.timelines] == ["barge_in"]
    tracing.call_ended("call_1", "completed")


def test_a_call_without_a_record_sink_is_still_counted() -> None:
    metered = Metrics().call_sink(None, carrier="telnyx", provider="deepgram", model=None)
    metered.provider_event(ProviderEventType.CALLER_TRANSCRIPT, 10.0)  # nothing underneath
    metered.usage(Usage(input_audio_tokens=3))
    assert metered.total_usage.input_audio_tokens == 3
