"""Writing one call's record as it happens: the bridge's :class:`CallSink` over the store.

Every method but ``create`` and ``finalize`` returns at once: writes go through the store's
:class:`~switchboard.store.CallRecorder`, whose background writer batches and commits them, so
audio never waits on the database and a crash mid-call leaves what happened so far readable.

The sink also reports the call's lifecycle to the integrations (docs/integrations.md): each
webhook event (``call.started``, ``call.answered``, ``call.transferred``, ``call.failover``,
``tool.failed``, ``call.ended``) is an op queued in one group with the record change it reports,
so both commit together; the delivery worker sends it. The end also asks for the agent's
post-call analysis. The bridge core knows nothing of this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from switchboard.bridge.sink import CallSink
from switchboard.catalog import Catalog
from switchboard.cost import ServedUsage, estimate_call_cost, estimate_served_cost
from switchboard.integrations.events import EventType
from switchboard.integrations.service import CallIntegrations
from switchboard.media import Usage
from switchboard.store import CallRecorder, CallStore, ops
from switchboard.store.models import utcnow
from switchboard.tools import ToolResult

__all__ = ["CallRecordSink"]

logger = logging.getLogger(__name__)


class CallRecordSink(CallSink):
    """A :class:`~switchboard.bridge.sink.CallSink` that records into a :class:`CallStore`."""

    def __init__(
        self, store: CallStore, call_id: str, integrations: CallIntegrations | None = None
    ) -> None:
        self.store = store
        self.call_id = call_id
        self.integrations = integrations or CallIntegrations()
        self.recorder: CallRecorder = store.recorder(call_id)
        self.total_usage = Usage()
        self._t0_ms = time.monotonic() * 1000.0
        self._answered_ms: float | None = None
        self.transcripts: list[tuple[str, str, bool]] = []
        self._extra: dict[str, Any] = {}
        #: the providers that served the call so far, in order (``calls.providers``)
        self.providers: list[str] = []

    async def create(self, **fields: Any) -> bool:
        """Create the record (awaited: the webhook answers once the call exists).

        Returns False (and logs why) when the store cannot be written: a call is worth more than
        its record, so the caller takes the call anyway.
        """
        self._extra = dict(fields.get("extra") or {})
        self.providers = [fields["provider"]] if fields.get("provider") else []
        started = self._event("call.started", _started_data(fields))
        try:
            await self.store.create_call(call_id=self.call_id, also=started, **fields)
        except Exception as exc:
            logger.error("call %s: cannot create the call record: %s", self.call_id, exc)
            return False
        self.recorder.record_timeline("call.created", {"carrier": fields.get("carrier")})
        return True

    def set_extra(self, **values: Any) -> None:
        """Add ``values`` to the record's ``extra`` (an outbound call's AMD ``outcome``)."""
        self._extra.update(values)
        self.recorder.record_update(extra=dict(self._extra))

    def served_by(self, old: str, new: str, model: str | None) -> None:
        """A failover: ``new`` (at ``model``) serves the call after ``old``; the record names
        it as the call's provider from now, after the ones before it."""
        if not self.providers:  # an adopted call: its record was created on another node
            self.providers = [old]
        if new not in self.providers:
            self.providers.append(new)
        self.recorder.record_update(provider=new, model=model, providers=list(self.providers))

    def _offset(self, at_ms: float) -> int:
        return max(0, int(at_ms - self._t0_ms))

    def answered(self) -> None:
        self._answered_ms = time.monotonic() * 1000.0
        at = utcnow()
        update = ops.UpdateCall(self.call_id, {"status": "in-progress", "answered_at": at})
        answered = self._event("call.answered", {"answered_at": at.isoformat()})
        self.recorder.record(ops.Group((update, *answered)) if answered else update)
        self.recorder.record_timeline("media.started")

    # -- CallSink ----------------------------------------------------------------------------------
    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        self.transcripts.append((role, text, interrupted))
        offset = self._offset(at_ms)  # when the line was settled (heard, or cut off)
        self.recorder.record_transcript(
            role, text, started_ms=offset, ended_ms=offset, interrupted=interrupted
        )

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any] | None = None) -> None:
        event = _TIMELINE_EVENTS.get(kind)
        also = self._event(event, dict(data or {})) if event is not None else ()
        self.recorder.record_timeline(
            kind, {**(data or {}), "t_ms": self._offset(at_ms)}, also=also
        )

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        self.recorder.record_turn_latency(turn, round(latency_ms, 1))

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        failed: tuple[ops.SingleOp, ...] = ()
        if not result.ok:
            failed = self._event(
                "tool.failed",
                {
                    "name": result.name,
                    "arguments": dict(result.arguments or {}),
                    "error": result.error,
                    "duration_ms": round(result.duration_ms, 1),
                    "tool_call_id": result.call_id,
                },
            )
        self.recorder.record_tool_result(result, also=failed)

    def usage(self, usage: Usage) -> None:
        self.total_usage = self.total_usage + usage

    # -- end ------------------------------------------------------------------------------
    async def finalize(
        self,
        *,
        status: str,
        end_reason: str,
        provider: str,
        model: str | None,
        carrier: str,
        catalog: Catalog,
        llm_model: str | None = None,
        served: Sequence[ServedUsage] = (),
    ) -> None:
        """Record status, reason, usage and the estimated cost; waits for every write.

        ``llm_model`` is a segmented pipeline's LLM when an agent chose one (priced as such).
        ``served``: after a failover, each provider's usage; the cost is their sum (each at its
        own prices) and the carrier's minutes, instead of ``provider``'s prices for it all.
        """
        answered = self._answered_ms
        seconds = (time.monotonic() * 1000.0 - answered) / 1000.0 if answered else 0.0
        if len(served) > 1:
            cost = estimate_served_cost(catalog, served, carrier=carrier, carrier_seconds=seconds)
        else:
            cost = estimate_call_cost(
                catalog,
                provider=provider,
                model=model,
                llm_model=llm_model,
                usage=self.total_usage,
                carrier=carrier,
                carrier_seconds=seconds,
            )
        also = self._event("call.ended", {}, with_record=True)
        spec = self.integrations.analysis
        if spec is not None:
            urls = self.integrations.routes.urls("call.analyzed")
            request = {"spec": spec.model_dump(mode="json"), "urls": list(urls)}
            also += (ops.RequestAnalysis(self.call_id, request),)
        try:
            await self.recorder.finalize(status, end_reason, self.total_usage, cost, also=also)
        except Exception as exc:  # the record must not take the call's cleanup down with it
            logger.error("call %s: could not finalise the record: %s", self.call_id, exc)
        else:
            self.integrations.ended()

    def _event(
        self, event_type: EventType, data: dict[str, Any], *, with_record: bool = False
    ) -> tuple[ops.SingleOp, ...]:
        """The op queuing ``event_type`` for the call's receivers (none: an empty tuple)."""
        op = self.integrations.routes.event(self.call_id, event_type, data, with_record=with_record)
        return (op,) if op is not None else ()


#: Timeline kinds that are also webhook events.
_TIMELINE_EVENTS: dict[str, EventType] = {
    "call.transferred": "call.transferred",
    "provider.failover": "call.failover",
}


def _started_data(fields: dict[str, Any]) -> dict[str, Any]:
    """``call.started``'s data from the record's fields."""
    names = {"from_number": "from", "to_number": "to"}
    keep = ("carrier", "carrier_call_id", "direction", "from_number", "to_number", "agent")
    return {names.get(key, key): fields.get(key) for key in (*keep, "provider", "model")}
