"""Optional OpenTelemetry traces: one span per call, its turns and provider work as children.

Off by default; ``SWITCHBOARD_OTEL=1`` turns it on (needs the ``otel`` extra:
``pip install 'switchboard[otel]'``). Spans go to the tracer provider configured for the process
(``opentelemetry.trace.set_tracer_provider``, e.g. an SDK provider with an OTLP exporter set up by
``opentelemetry-instrument``), or to the one passed to :class:`Tracing`.

Theory of operation: the call manager starts a ``call`` span when it accepts a call
(:meth:`Tracing.call_started`), wraps the provider's connect in a ``provider.connect`` child
(:meth:`Tracing.span`), gives the bridged session a :class:`TracingSink` that wraps the call's
other sinks, and ends the call span with the end reason (:meth:`Tracing.call_ended`). The sink
turns what the session reports into children, timed with the session's own clock:

* ``turn`` — the caller's end of speech to the ``response.done`` of the reply the caller heard
  (a function-call response without audio keeps it open; attributes: turn number, latency at
  the carrier socket);
* ``tool <name>`` — one per tool invocation (status ERROR when the tool failed);
* ``provider.reconnect`` — ``provider.reconnecting`` to ``provider.reconnected``;

and every timeline entry (lifecycle steps, barge-ins, provider errors) becomes a timestamped
event on the call span. Nothing is traced per audio frame.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider

from switchboard.media import Usage
from switchboard.tools import ToolResult

if TYPE_CHECKING:
    from switchboard.bridge.sink import CallSink
    from switchboard.providers.events import ProviderEventType

__all__ = ["CallTrace", "Tracing", "TracingSink"]

logger = logging.getLogger(__name__)

_FAILED = frozenset({"provider_failed", "internal_error"})


def _wall_ns() -> int:
    return time.time_ns()


class CallTrace:
    """The open spans of one call; times given in the session's clock (monotonic ms)."""

    def __init__(self, tracer: Tracer, call_id: str, attributes: dict[str, Any]) -> None:
        self.tracer = tracer
        # loop.time() is time.monotonic(): this offset turns its ms into wall-clock ns.
        self._offset_ns = time.time_ns() - time.monotonic_ns()
        self.root: Span = tracer.start_span(
            "call", attributes={"switchboard.call_id": call_id, **attributes}
        )
        self.context = trace.set_span_in_context(self.root)
        self.turn: Span | None = None
        self.turn_heard = False  # the turn's reply has reached the caller
        self.turns = 0
        self.reconnect: Span | None = None
        self.usage = Usage()  # what the call's sink reported

    def ns(self, at_ms: float) -> int:
        return self._offset_ns + int(at_ms * 1_000_000)

    def child(self, name: str, at_ms: float, **attributes: Any) -> Span:
        return self.tracer.start_span(
            name, context=self.context, start_time=self.ns(at_ms), attributes=attributes
        )

    def close(self, reason: str, usage: Usage | None) -> None:
        """End every open span; ``usage`` (else what the sink reported) goes on the call span."""
        usage = self.usage if usage is None else usage
        end = _wall_ns()
        if self.reconnect is not None:
            self.reconnect.set_status(Status(StatusCode.ERROR, "call ended while reconnecting"))
        for span in (self.turn, self.reconnect):
            if span is not None:
                span.end(end_time=end)
        self.turn = self.reconnect = None
        self.root.set_attribute("switchboard.end_reason", reason)
        self.root.set_attribute("switchboard.turns", self.turns)
        for name, value in usage.as_dict().items():
            if value:
                self.root.set_attribute(f"switchboard.usage.{name}", value)
        if reason in _FAILED:
            self.root.set_status(Status(StatusCode.ERROR, reason))
        self.root.end(end_time=end)


class Tracing:
    """Creates call traces.

    Args:
        tracer_provider: where spans go; the process's global provider when None.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("switchboard", tracer_provider=tracer_provider)
        self._calls: dict[str, CallTrace] = {}

    def call_started(self, call_id: str, **attributes: str) -> None:
        """Open the ``call`` span (attributes such as carrier, provider, model, agent)."""
        attrs = {f"switchboard.{k}": v for k, v in attributes.items() if v is not None}
        self._calls[call_id] = CallTrace(self.tracer, call_id, attrs)

    @contextlib.contextmanager
    def span(self, call_id: str, name: str) -> Iterator[None]:
        """A child span of the call around a block (exceptions recorded, then re-raised)."""
        call = self._calls.get(call_id)
        if call is None:
            yield
            return
        with self.tracer.start_as_current_span(name, context=call.context):
            yield

    def call_sink(self, call_id: str, inner: CallSink | None) -> CallSink | None:
        """A :class:`TracingSink` over ``inner`` for a started call (``inner`` when unknown)."""
        call = self._calls.get(call_id)
        return inner if call is None else TracingSink(call, inner)

    def call_ended(self, call_id: str, reason: str, usage: Usage | None = None) -> None:
        """End the call's spans; the call span's status is ERROR when the call failed.

        ``usage`` goes on the call span; by default, what the call's :class:`TracingSink` saw.
        """
        call = self._calls.pop(call_id, None)
        if call is not None:
            call.close(reason, usage)


class TracingSink:
    """A call sink that turns the call's reports into spans and forwards them to ``inner``."""

    def __init__(self, call: CallTrace, inner: CallSink | None) -> None:
        self.call = call
        self.inner = inner

    @property
    def total_usage(self) -> Usage:
        """The usage the call reported so far."""
        return self.call.usage

    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        if self.inner is not None:
            self.inner.transcript(role, text, at_ms, interrupted)

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any]) -> None:
        call = self.call
        attrs = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool)}
        call.root.add_event(kind, attributes=attrs, timestamp=call.ns(at_ms))
        match kind:
            case "caller.speech_stopped":
                if call.turn is not None:  # the caller spoke again before a reply finished
                    call.turn.end(end_time=call.ns(at_ms))
                call.turns += 1
                call.turn = call.child("turn", at_ms, **{"switchboard.turn": call.turns})
                call.turn_heard = False
            case "reply.first_audio" if call.turn is not None:
                call.turn.add_event("first_audio", timestamp=call.ns(at_ms))
                call.turn_heard = True
            case "barge_in" if call.turn is not None:
                call.turn.add_event("barge_in", attributes=attrs, timestamp=call.ns(at_ms))
            case "response.done" if call.turn is not None and call.turn_heard:
                # A response with no audio (a function call) leaves the turn open for the reply.
                call.turn.set_attribute("switchboard.response_status", str(data.get("status")))
                call.turn.end(end_time=call.ns(at_ms))
                call.turn = None
            case "provider.reconnecting" if call.reconnect is None:
                call.reconnect = call.child("provider.reconnect", at_ms, **attrs)
            case "provider.reconnected" if call.reconnect is not None:
                call.reconnect.end(end_time=call.ns(at_ms))
                call.reconnect = None
            case _:
                pass
        if self.inner is not None:
            self.inner.timeline(kind, at_ms, data)

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        if self.call.turn is not None:
            self.call.turn.set_attribute("switchboard.turn_latency_ms", round(latency_ms, 1))
        if self.inner is not None:
            self.inner.turn_latency(turn, latency_ms)

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        call = self.call
        span = call.child(
            f"tool {result.name}",
            at_ms - result.duration_ms,
            **{"switchboard.tool": result.name, "switchboard.tool_ok": result.ok},
        )
        if not result.ok:
            span.set_status(Status(StatusCode.ERROR, result.error or "tool failed"))
        span.end(end_time=call.ns(at_ms))
        if self.inner is not None:
            self.inner.tool_call(result, at_ms)

    def usage(self, usage: Usage) -> None:
        self.call.usage = self.call.usage + usage
        if self.inner is not None:
            self.inner.usage(usage)

    def provider_event(self, kind: ProviderEventType, at_ms: float) -> None:
        # Not traced (per event); the metrics underneath time the provider's first audio.
        if self.inner is not None:
            self.inner.provider_event(kind, at_ms)
