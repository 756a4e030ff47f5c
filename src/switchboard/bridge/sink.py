"""Where a call's record goes: the :class:`CallSink` protocol and an in-memory sink.

The per-call runner reports everything it records through a sink: the store's recorder
(``bridge/recording.py``), the metrics wrapper (``switchboard.metrics``), tracing, or
:class:`MemorySink` in tests. Every method is non-blocking: audio never waits on a record.

Metrics and tracing wrap the record sink and implement this protocol too, and the bridge
imports them, so this module stands alone: it imports nothing of the bridge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.media import Usage
from switchboard.providers.events import ProviderEventType
from switchboard.tools import ToolResult

__all__ = ["CallSink", "MemorySink"]


class CallSink(Protocol):
    """Where a call's record goes (the store recorder, metrics); every method is non-blocking."""

    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None: ...

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any]) -> None: ...

    def turn_latency(self, turn: int, latency_ms: float) -> None: ...

    def tool_call(self, result: ToolResult, at_ms: float) -> None: ...

    def usage(self, usage: Usage) -> None: ...

    def provider_event(self, kind: ProviderEventType, at_ms: float) -> None:
        """The session received a provider event of ``kind`` at ``at_ms`` (the timeline's clock),
        after handling it; sinks that time the provider (metrics) override this no-op."""
        return None


@dataclass
class MemorySink(CallSink):
    """A :class:`CallSink` that keeps everything in memory (tests, ``/v1/sessions``)."""

    transcripts: list[tuple[str, str, float, bool]] = field(default_factory=list)
    timelines: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    latencies: list[tuple[int, float]] = field(default_factory=list)
    tools: list[ToolResult] = field(default_factory=list)
    total_usage: Usage = field(default_factory=Usage)

    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        self.transcripts.append((role, text, at_ms, interrupted))

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any]) -> None:
        self.timelines.append((kind, at_ms, data))

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        self.latencies.append((turn, latency_ms))

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        self.tools.append(result)

    def usage(self, usage: Usage) -> None:
        self.total_usage = self.total_usage + usage
