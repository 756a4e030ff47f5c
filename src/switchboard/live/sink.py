"""A call's sink that publishes to the live hub, around the sinks that record and measure.

The call manager wraps each bridged call's sink chain (record ← metrics ← tracing) in a
:class:`LiveSink`: every method passes the report on first, then publishes it to the
:class:`~switchboard.live.hub.LiveHub`, which never waits. It also keeps the call's cost so
far (the catalogue's estimate from the usage reported until now and the time since answer),
so the console shows it while the call runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchboard.catalog import Catalog
from switchboard.cost import estimate_call_cost
from switchboard.live.hub import LiveHub
from switchboard.media import Usage
from switchboard.providers.events import ProviderEventType
from switchboard.tools import ToolResult

if TYPE_CHECKING:  # the gateway imports this module, and importing the bridge imports the gateway
    from switchboard.bridge.sink import CallSink

__all__ = ["CallPricing", "LiveSink"]


@dataclass(frozen=True, slots=True)
class CallPricing:
    """What prices one call: the catalogue and the call's provider, model and carrier."""

    catalog: Catalog
    provider: str
    model: str | None
    carrier: str
    llm_model: str | None = None


class LiveSink:
    """A :class:`~switchboard.bridge.sink.CallSink`: every report goes to ``inner`` (if any),
    then to ``hub``.

    Args:
        hub: where the call's events go.
        call_id: the call.
        inner: the sink chain that records and measures the call (None: nothing records it).
        pricing: how the call is priced (None: no cost so far is published).
        t0_ms: the call's clock origin (``time.monotonic()`` in ms when it was accepted), so
            offsets read like the record's.
    """

    def __init__(
        self,
        hub: LiveHub,
        call_id: str,
        inner: CallSink | None,
        *,
        pricing: CallPricing | None = None,
        t0_ms: float | None = None,
    ) -> None:
        self.hub = hub
        self.call_id = call_id
        self.inner = inner
        self.pricing = pricing
        self.total_usage = Usage()
        self._t0_ms = time.monotonic() * 1000.0 if t0_ms is None else t0_ms
        self._answered_ms = time.monotonic() * 1000.0

    def _offset(self, at_ms: float) -> int:
        return max(0, int(at_ms - self._t0_ms))

    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        if self.inner is not None:
            self.inner.transcript(role, text, at_ms, interrupted)
        self.hub.publish(
            "transcript",
            self.call_id,
            {"role": role, "text": text, "interrupted": interrupted, "t_ms": self._offset(at_ms)},
        )

    def partial(self, role: str, text: str) -> None:
        """The line ``role`` is saying, so far ("" once it is final): live only, not recorded."""
        self.hub.publish("transcript.partial", self.call_id, {"role": role, "text": text})

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any]) -> None:
        if self.inner is not None:
            self.inner.timeline(kind, at_ms, data)
        self.hub.publish(
            "timeline", self.call_id, {"kind": kind, "t_ms": self._offset(at_ms), "data": data}
        )

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        if self.inner is not None:
            self.inner.turn_latency(turn, latency_ms)
        latency = round(latency_ms, 1)
        self.hub.publish("turn.latency", self.call_id, {"turn": turn, "latency_ms": latency})
        self.hub.updated(self.call_id, last_latency_ms=latency, turns=turn)

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        if self.inner is not None:
            self.inner.tool_call(result, at_ms)
        self.hub.publish(
            "timeline",
            self.call_id,
            {
                "kind": "tool.call",
                "t_ms": self._offset(at_ms),
                "data": {
                    "name": result.name,
                    "arguments": dict(result.arguments or {}),
                    "ok": result.ok,
                    "result": result.value,
                    "error": result.error,
                    "duration_ms": round(result.duration_ms, 1),
                },
            },
        )

    def usage(self, usage: Usage) -> None:
        if self.inner is not None:
            self.inner.usage(usage)
        self.total_usage = self.total_usage + usage
        cost = self.cost_so_far()
        if cost is not None:
            self.hub.updated(self.call_id, cost_usd=cost)

    def provider_event(self, kind: ProviderEventType, at_ms: float) -> None:
        if self.inner is not None:
            self.inner.provider_event(kind, at_ms)

    def cost_so_far(self) -> float | None:
        """The estimated cost (USD) of the call until now; None when it is not priced."""
        pricing = self.pricing
        if pricing is None:
            return None
        seconds = time.monotonic() - self._answered_ms / 1000.0
        return estimate_call_cost(
            pricing.catalog,
            provider=pricing.provider,
            model=pricing.model,
            llm_model=pricing.llm_model,
            usage=self.total_usage,
            carrier=pricing.carrier,
            carrier_seconds=seconds,
        ).total
