"""Writing one call's record as it happens: the bridge's :class:`CallSink` over the store.

Every method but ``create`` and ``finalize`` returns at once: writes go through the store's
:class:`~switchboard.store.CallRecorder`, whose background writer batches and commits them, so
audio never waits on the database and a crash mid-call leaves what happened so far readable.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from switchboard.catalog import Catalog
from switchboard.cost import estimate_call_cost
from switchboard.media import Usage
from switchboard.store import CallRecorder, CallStore
from switchboard.store.models import utcnow
from switchboard.tools import ToolResult

__all__ = ["CallRecordSink"]

logger = logging.getLogger(__name__)


class CallRecordSink:
    """A :class:`~switchboard.bridge.session.CallSink` that records into a :class:`CallStore`."""

    def __init__(self, store: CallStore, call_id: str) -> None:
        self.store = store
        self.call_id = call_id
        self.recorder: CallRecorder = store.recorder(call_id)
        self.total_usage = Usage()
        self._t0_ms = time.monotonic() * 1000.0
        self._answered_ms: float | None = None
        self.transcripts: list[tuple[str, str, bool]] = []

    async def create(self, **fields: Any) -> bool:
        """Create the record (awaited: the webhook answers once the call exists).

        Returns False (and logs why) when the store cannot be written: a call is worth more than
        its record, so the caller takes the call anyway.
        """
        try:
            await self.store.create_call(call_id=self.call_id, **fields)
        except Exception as exc:
            logger.error("call %s: cannot create the call record: %s", self.call_id, exc)
            return False
        self.recorder.record_timeline("call.created", {"carrier": fields.get("carrier")})
        return True

    def _offset(self, at_ms: float) -> int:
        return max(0, int(at_ms - self._t0_ms))

    def answered(self) -> None:
        self._answered_ms = time.monotonic() * 1000.0
        self.recorder.record_update(status="in-progress", answered_at=utcnow())
        self.recorder.record_timeline("media.started")

    # -- CallSink ----------------------------------------------------------------------------------
    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        self.transcripts.append((role, text, interrupted))
        offset = self._offset(at_ms)  # when the line was settled (heard, or cut off)
        self.recorder.record_transcript(
            role, text, started_ms=offset, ended_ms=offset, interrupted=interrupted
        )

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any] | None = None) -> None:
        self.recorder.record_timeline(kind, {**(data or {}), "t_ms": self._offset(at_ms)})

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        self.recorder.record_turn_latency(turn, round(latency_ms, 1))

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        self.recorder.record_tool_result(result)

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
    ) -> None:
        """Record status, reason, usage and the estimated cost; waits for every write.

        ``llm_model`` is a segmented pipeline's LLM when an agent chose one (priced as such).
        """
        answered = self._answered_ms
        seconds = (time.monotonic() * 1000.0 - answered) / 1000.0 if answered else 0.0
        cost = estimate_call_cost(
            catalog,
            provider=provider,
            model=model,
            llm_model=llm_model,
            usage=self.total_usage,
            carrier=carrier,
            carrier_seconds=seconds,
        )
        try:
            await self.recorder.finalize(status, end_reason, self.total_usage, cost)
        except Exception as exc:  # the record must not take the call's cleanup down with it
            logger.error("call %s: could not finalise the record: %s", self.call_id, exc)
