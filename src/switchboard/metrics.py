"""Prometheus metrics: one :class:`Metrics` per app, fed by a per-call :class:`MetricsSink`.

Theory of operation: the app's gateway builds one :class:`Metrics` holding its own
:class:`~prometheus_client.CollectorRegistry` (never the global one, so several apps in one
process — tests, workers — never collide) and serves it at ``GET /metrics``. The call manager
counts a call when it is prepared (``call_started``) and when it ends (``call_ended``: outcome,
media frame counters from the carrier codec's ``stats``, estimated cost). While a call is bridged
a :class:`MetricsSink` wraps the call's record sink: it forwards every write and derives counts
from what the session reports anyway — timeline kinds (``barge_in``, ``provider.reconnecting``,
``provider.error``, ``caller.speech_stopped``), turn latencies, tool results, usage — plus one
hook only the session can call, ``provider_event``, which times the provider's first audio and
first caller transcript after the caller's end of speech.

Nothing here runs per audio frame: media counters are added once, at the end of the call.
A lifespan task (:meth:`Metrics.watch_event_loop`) measures how late the event loop wakes a
sleeper; every call shares that loop, so its lag is the first sign of an overloaded worker.

Names follow the Prometheus conventions (base units: seconds, USD; ``_total`` on counters).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from switchboard.catalog import Catalog
from switchboard.cost import estimate_call_cost
from switchboard.media import Usage
from switchboard.providers.base import ProviderEventType
from switchboard.tools import ToolResult

if TYPE_CHECKING:
    from switchboard.bridge.sink import CallSink

__all__ = ["CONTENT_TYPE", "MAX_LABEL_VALUES", "Metrics", "MetricsSink", "rejection_reason"]

logger = logging.getLogger(__name__)

#: The Prometheus text exposition format's content type (version 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SECONDS_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0, 3.0, 5.0, 8.0)
_TOOL_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Distinct values a free-form label (tool name, error code) may take before "other".
MAX_LABEL_VALUES = 50
#: Codec ``stats`` keys counted as media problems (``frames_in``/``frames_out`` are counted apart).
_PROBLEM_KINDS = ("late", "dropped", "reordered", "gaps", "malformed")


def rejection_reason(why: str) -> str:
    """A low-cardinality label for a webhook/media rejection message (URLs and ids left out)."""
    text = why.lower()
    for needle, label in (
        ("missing", "missing_signature"),
        ("replay", "replay"),
        ("duplicate", "replay"),
        ("no key", "no_key"),
        ("token", "bad_token"),
        ("signature", "bad_signature"),
        ("not ours", "wrong_account"),
    ):
        if needle in text:
            return label
    return "invalid_request"


class Metrics:
    """Every metric switchboard exports, in a registry of its own.

    Args:
        turn_latency_buckets_ms: histogram buckets for turn latency (providers.yaml
            ``monitoring.turn_latency_buckets_ms``), converted to seconds.
        catalog: prices for the estimated-cost counters (None: cost is not counted).
    """

    def __init__(
        self, *, turn_latency_buckets_ms: Sequence[float] = (), catalog: Catalog | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.catalog = catalog
        self._seen: dict[str, set[str]] = {}
        r = self.registry
        turn_buckets = tuple(b / 1000.0 for b in turn_latency_buckets_ms) or _SECONDS_BUCKETS
        self.active_calls = Gauge(
            "switchboard_active_calls", "Calls prepared or bridged right now.", registry=r
        )
        self.calls = Counter(
            "switchboard_calls",
            "Ended calls by carrier, provider and outcome (end reason).",
            ["carrier", "provider", "outcome"],
            registry=r,
        )
        self.turn_latency = Histogram(
            "switchboard_turn_latency_seconds",
            "Caller end of speech to the first reply frame sent on the carrier socket.",
            ["carrier", "provider"],
            buckets=turn_buckets,
            registry=r,
        )
        self.first_audio = Histogram(
            "switchboard_provider_first_audio_seconds",
            "Caller end of speech to the provider's first audio.output event.",
            ["provider", "model"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.first_transcript = Histogram(
            "switchboard_provider_first_transcript_seconds",
            "Caller end of speech to the provider's first caller transcript.",
            ["provider", "model"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "switchboard_provider_errors",
            "Provider error events by code.",
            ["provider", "code"],
            registry=r,
        )
        self.provider_failovers = Counter(
            "switchboard_provider_failovers",
            "Calls moved mid-call (or at their start) from one provider to the next.",
            ["from", "to", "reason"],
            registry=r,
        )
        self.provider_reconnects = Counter(
            "switchboard_provider_reconnects",
            "Provider sessions that dropped and started reconnecting.",
            ["provider"],
            registry=r,
        )
        self.tool_calls = Counter(
            "switchboard_tool_calls", "Tool invocations.", ["tool"], registry=r
        )
        self.tool_errors = Counter(
            "switchboard_tool_errors", "Tool invocations that failed.", ["tool"], registry=r
        )
        self.tool_duration = Histogram(
            "switchboard_tool_duration_seconds",
            "Tool invocation wall time, validation included.",
            ["tool"],
            buckets=_TOOL_BUCKETS,
            registry=r,
        )
        self.media_frames = Counter(
            "switchboard_media_frames",
            "Carrier media frames by direction (added at call end).",
            ["carrier", "direction"],
            registry=r,
        )
        self.media_problems = Counter(
            "switchboard_media_frame_problems",
            "Carrier media frames late, dropped, reordered, missing (gaps) or malformed.",
            ["carrier", "kind"],
            registry=r,
        )
        self.barge_ins = Counter(
            "switchboard_barge_ins",
            "Agent replies cut short by the caller.",
            ["provider"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "switchboard_event_loop_lag_seconds",
            "The latest event-loop scheduling delay measured.",
            registry=r,
        )
        self.loop_lag_histogram = Histogram(
            "switchboard_event_loop_lag_observed_seconds",
            "Event-loop scheduling delays measured every monitoring interval.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.loop_tasks = Gauge(
            "switchboard_event_loop_tasks",
            "Asyncio tasks not yet done on the event loop (a leak shows as growth after calls).",
            registry=r,
        )
        self.webhook_rejections = Counter(
            "switchboard_webhook_rejections",
            "Webhooks and media sockets refused (bad signature, token, replay).",
            ["carrier", "reason"],
            registry=r,
        )
        self.calls_refused = Counter(
            "switchboard_calls_refused",
            "Calls refused at the carrier before answering (busy: SWITCHBOARD_MAX_CALLS reached).",
            ["carrier", "reason"],
            registry=r,
        )
        self.signature_throttles = Counter(
            "switchboard_signature_throttled",
            "Requests refused unchecked: their address failed too many signature checks.",
            ["carrier"],
            registry=r,
        )
        self.cost = Counter(
            "switchboard_estimated_cost_usd",
            "Estimated provider cost from list prices, added at call end.",
            ["provider"],
            registry=r,
        )
        self.telephony_cost = Counter(
            "switchboard_estimated_telephony_cost_usd",
            "Estimated carrier cost (billed minutes) from list prices, added at call end.",
            ["carrier"],
            registry=r,
        )

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> Metrics:
        """Metrics with the buckets and prices of a providers.yaml catalogue."""
        return cls(
            turn_latency_buckets_ms=catalog.monitoring.turn_latency_buckets_ms, catalog=catalog
        )

    def bounded(self, kind: str, value: str) -> str:
        """``value`` as a label, or ``"other"`` once ``kind`` has :data:`MAX_LABEL_VALUES` values.

        Tool names come from the model and error codes from the vendor: neither may grow the
        number of series without bound.
        """
        seen = self._seen.setdefault(kind, set())
        if value in seen:
            return value
        if len(seen) >= MAX_LABEL_VALUES:
            return "other"
        seen.add(value)
        return value

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    # -- call lifecycle ----------------------------------------------------------------------
    def call_started(self) -> None:
        """A call was accepted (its provider is connecting)."""
        self.active_calls.inc()

    def call_sink(
        self, inner: CallSink | None, *, carrier: str, provider: str, model: str | None
    ) -> MetricsSink:
        """A :class:`MetricsSink` for one bridged call, forwarding to ``inner`` (may be None)."""
        return MetricsSink(self, inner, carrier=carrier, provider=provider, model=model or "")

    def call_ended(
        self,
        *,
        carrier: str,
        provider: str,
        model: str | None,
        reason: str,
        sink: MetricsSink | None = None,
        media: Mapping[str, int] | None = None,
        llm_model: str | None = None,
    ) -> None:
        """Count an ended call: outcome, media frames and estimated cost.

        Args:
            sink: the call's :class:`MetricsSink` when it was bridged (usage, answered time).
            media: the carrier codec's ``stats`` counters.
            llm_model: a segmented pipeline's LLM chosen by the agent (priced as such).
        """
        self.active_calls.dec()
        self.calls.labels(carrier, provider, reason).inc()
        if media:
            self.media_frames.labels(carrier, "in").inc(media.get("frames_in", 0))
            self.media_frames.labels(carrier, "out").inc(media.get("frames_out", 0))
            for kind in _PROBLEM_KINDS:
                if media.get(kind):
                    self.media_problems.labels(carrier, kind).inc(media[kind])
        if sink is not None and self.catalog is not None:
            try:
                cost = estimate_call_cost(
                    self.catalog,
                    provider=provider,
                    model=model,
                    llm_model=llm_model,
                    usage=sink.total_usage,
                    carrier=carrier,
                    carrier_seconds=sink.elapsed_s(),
                )
            except Exception as exc:  # unknown prices must not break the call's end
                logger.warning("no cost estimate for %s/%s: %s", provider, model, exc)
                return
            self.cost.labels(provider).inc(cost.provider_total)
            self.telephony_cost.labels(carrier).inc(cost.telephony_total)

    def signature_rejected(self, carrier: str, why: str) -> None:
        """Count a refused webhook or media socket (``why`` is reduced to a reason label)."""
        self.webhook_rejections.labels(carrier, rejection_reason(why)).inc()

    def provider_failover(self, old: str, new: str, reason: str) -> None:
        """Count a call moved from provider ``old`` to ``new`` (``reason``: the trigger)."""
        self.provider_failovers.labels(old, new, reason).inc()

    def call_refused(self, carrier: str, reason: str) -> None:
        """Count a call refused at the carrier (``reason``: ``busy``)."""
        self.calls_refused.labels(carrier, reason).inc()

    def signature_throttled(self, carrier: str) -> None:
        """Count a request refused unchecked because its address failed too many checks."""
        self.signature_throttles.labels(carrier).inc()

    # -- event loop ------------------------------------------------------------------------------
    async def watch_event_loop(self, interval_s: float) -> None:
        """Measure how late ``asyncio.sleep(interval_s)`` wakes, and count the loop's tasks,
        forever (cancel to stop)."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(interval_s)
            lag = max(0.0, loop.time() - start - interval_s)
            self.loop_lag.set(lag)
            self.loop_lag_histogram.observe(lag)
            self.loop_tasks.set(len(asyncio.all_tasks(loop)))


class MetricsSink:
    """A call sink that counts what the call reports and forwards it to the record sink
    (``inner``, None when the call is not recorded)."""

    def __init__(
        self, metrics: Metrics, inner: CallSink | None, *, carrier: str, provider: str, model: str
    ) -> None:
        self.metrics = metrics
        self.inner = inner
        self.carrier = carrier
        self.provider = provider
        self.model = model
        self.total_usage = Usage()
        self._started = time.monotonic()
        self._speech_end_for_audio: float | None = None
        self._speech_end_for_transcript: float | None = None

    def elapsed_s(self) -> float:
        """Seconds since the call was bridged (the carrier's billable time, roughly)."""
        return time.monotonic() - self._started

    # -- CallSink ------------------------------------------------------------------------------
    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        if self.inner is not None:
            self.inner.transcript(role, text, at_ms, interrupted)

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any]) -> None:
        m = self.metrics
        match kind:
            case "caller.speech_stopped":
                self._speech_end_for_audio = self._speech_end_for_transcript = at_ms
            case "caller.speech_started":  # a new utterance: an unanswered wait is stale
                self._speech_end_for_audio = self._speech_end_for_transcript = None
            case "barge_in":
                m.barge_ins.labels(self.provider).inc()
            case "provider.reconnecting":
                m.provider_reconnects.labels(self.provider).inc()
            case "provider.error":
                code = m.bounded("error_code", str(data.get("code") or "unknown"))
                m.provider_errors.labels(self.provider, code).inc()
            case _:
                pass
        if self.inner is not None:
            self.inner.timeline(kind, at_ms, data)

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        self.metrics.turn_latency.labels(self.carrier, self.provider).observe(latency_ms / 1000.0)
        if self.inner is not None:
            self.inner.turn_latency(turn, latency_ms)

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        m = self.metrics
        tool = m.bounded("tool", result.name)
        m.tool_calls.labels(tool).inc()
        if not result.ok:
            m.tool_errors.labels(tool).inc()
        m.tool_duration.labels(tool).observe(result.duration_ms / 1000.0)
        if self.inner is not None:
            self.inner.tool_call(result, at_ms)

    def usage(self, usage: Usage) -> None:
        self.total_usage = self.total_usage + usage
        if self.inner is not None:
            self.inner.usage(usage)

    def provider_event(self, kind: ProviderEventType, at_ms: float) -> None:
        """The session received a provider event at ``at_ms`` (its clock, like the timeline's)."""
        if kind is ProviderEventType.AUDIO_OUTPUT and self._speech_end_for_audio is not None:
            waited = max(0.0, at_ms - self._speech_end_for_audio) / 1000.0
            self.metrics.first_audio.labels(self.provider, self.model).observe(waited)
            self._speech_end_for_audio = None
        elif (
            kind is ProviderEventType.CALLER_TRANSCRIPT
            and self._speech_end_for_transcript is not None
        ):
            waited = max(0.0, at_ms - self._speech_end_for_transcript) / 1000.0
            self.metrics.first_transcript.labels(self.provider, self.model).observe(waited)
            self._speech_end_for_transcript = None
        if self.inner is not None:
            self.inner.provider_event(kind, at_ms)
