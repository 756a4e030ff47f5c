"""Runs post-call analyses: claims pending ones from the store, asks a text LLM, keeps the answer.

Theory of operation (one task per app, like the delivery worker)::

    claim due analyses (store/analyses.py) ──▶ for each: read the call, pick the LLM
          ▲                                    │ no key / nothing said ─▶ not_analysed (reason)
          │                                    │ answer valid ─────────▶ done (result)
          │                                    │ answer invalid ───────▶ failed (why)
          │                                    │ LLM unreachable ──────▶ pending again, later;
          │                                    │                         failed after max_attempts
          └── sleep ≤ poll_interval_s ◀────────┘ each final state is written with its
                                                   call.analyzed event, in one transaction

A pending analysis lives in the database, so one the server did not get to before a restart is
run after it; a worker that dies mid-analysis leaves a lease that lapses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from switchboard.config import Settings
from switchboard.errors import ConfigError, ProtocolError, ProviderError
from switchboard.integrations.analysis import (
    DEFAULT_MODELS,
    SYSTEM_PROMPT,
    AnalysisError,
    AnalysisSpec,
    StructuredLLM,
    read_answer,
    response_schema,
    transcript_prompt,
)
from switchboard.integrations.worker import PollingWorker
from switchboard.store import CallStore, ops
from switchboard.store.analyses import AnalysisJob
from switchboard.store.records import CallDetail

__all__ = ["AnalysisWorker", "LLMChoice", "choose_llm"]

logger = logging.getLogger(__name__)

#: ``(provider name, text LLM)`` for a spec, or why there is none (a sentence for the record).
LLMChoice = tuple[str, StructuredLLM] | str

NO_KEY = "no text LLM is configured: set GEMINI_API_KEY or OPENAI_API_KEY"


def _now() -> datetime:
    return datetime.now(UTC)


def choose_llm(settings: Settings, spec: AnalysisSpec) -> LLMChoice:
    """The spec's provider (or Gemini, then OpenAI: whichever has a key), or why none."""
    from switchboard.providers.gemini_text import GeminiTextLLM
    from switchboard.providers.openai_chat import OpenAIChatLLM

    for provider in [spec.provider] if spec.provider else ["gemini", "openai"]:
        model = spec.model or DEFAULT_MODELS[provider]
        try:
            if provider == "gemini":
                return provider, GeminiTextLLM(settings=settings, model=model)
            return provider, OpenAIChatLLM(settings=settings, model=model)
        except ConfigError as exc:
            if spec.provider:  # the agent asked for this one: say what it lacks
                return f"{', '.join(exc.missing)} is not set" if exc.missing else str(exc)
    return NO_KEY


class AnalysisWorker(PollingWorker):
    """Runs the store's pending analyses.

    Args:
        store: the call store.
        settings: the keys and base URLs of the text LLMs.
        llms: picks the LLM for a spec (:func:`choose_llm` by default; tests may pass another).
        poll_interval_s: the longest sleep between looks at the queue.
        lease_s: how long a claimed analysis is held.
        max_attempts: LLM failures (unreachable, refused) before the analysis is ``failed``.
        retry_after_s: the wait after such a failure.
        on_written: called after a result and its event are written (wakes the delivery worker).
        clock: now, timezone-aware.
    """

    _queue_name = "analysis queue"
    _task_name = "switchboard-analysis"

    def __init__(
        self,
        store: CallStore,
        settings: Settings,
        *,
        llms: Callable[[Settings, AnalysisSpec], LLMChoice] = choose_llm,
        poll_interval_s: float = 2.0,
        lease_s: float = 300.0,
        max_attempts: int = 3,
        retry_after_s: float = 30.0,
        on_written: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        super().__init__()
        self._store = store
        self._settings = settings
        self._llms = llms
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.retry_after_s = retry_after_s
        self._on_written = on_written
        self._clock = clock

    async def aclose(self) -> None:
        """Stop (an analysis in flight is abandoned; its lease lapses and it runs again)."""
        await self._stop_task()

    async def run_once(self) -> int:
        """Run the analyses due now; returns how many were taken."""
        jobs = await self._store.analyses.claim_due(self._clock(), limit=4, lease_s=self.lease_s)
        for job in jobs:
            await self._run_job(job)
        return len(jobs)

    async def next_due(self) -> datetime | None:
        """When the next analysis is due (None: none is queued)."""
        return await self._store.analyses.next_due()

    def _now(self) -> datetime:
        return self._clock()

    async def _run_job(self, job: AnalysisJob) -> None:
        request = dict(job.request)
        urls = tuple(str(u) for u in request.get("urls") or ())
        try:
            spec = AnalysisSpec.model_validate(request.get("spec") or {})
        except ValidationError as exc:
            await self._final(job.call_id, "failed", {"error": f"bad request: {exc}"}, urls)
            return
        detail = await self._store.get_call(job.call_id)
        if detail is None:
            return  # the call was deleted meanwhile
        if not detail.transcript:
            await self._final(job.call_id, "not_analysed", {"reason": "nothing was said"}, urls)
            return
        choice = self._llms(self._settings, spec)
        if isinstance(choice, str):
            await self._final(job.call_id, "not_analysed", {"reason": choice}, urls)
            return
        provider, llm = choice
        about = {"provider": provider, "model": llm.model}
        try:
            result = await self._ask(llm, spec, detail)
        except AnalysisError as exc:
            await self._final(job.call_id, "failed", {"error": str(exc), **about}, urls)
        except (ProviderError, ProtocolError, OSError) as exc:
            await self._retry_or_fail(job.call_id, request, urls, about, exc)
        else:
            await self._final(job.call_id, "done", {**result, **about}, urls)
        finally:
            await llm.aclose()

    async def _ask(
        self, llm: StructuredLLM, spec: AnalysisSpec, detail: CallDetail
    ) -> dict[str, Any]:
        prompt = transcript_prompt(
            spec,
            detail.transcript,
            outcome=detail.record.end_reason,
            tool_calls=[t.name for t in detail.tool_calls],
        )
        text, usage = await llm.generate_json(
            system_prompt=SYSTEM_PROMPT, prompt=prompt, schema=response_schema(spec)
        )
        return {**read_answer(spec, text), "usage": usage.as_dict()}

    async def _retry_or_fail(
        self,
        call_id: str,
        request: dict[str, Any],
        urls: tuple[str, ...],
        about: Mapping[str, Any],
        exc: Exception,
    ) -> None:
        attempts = int(request.get("attempts", 0)) + 1
        error = f"{type(exc).__name__}: {exc}"
        if attempts >= self.max_attempts:
            await self._final(call_id, "failed", {"error": error, **about}, urls)
            return
        logger.info("analysis of %s failed (%s); retrying", call_id, error)
        again = {"request": {**request, "attempts": attempts}, "last_error": error}
        due = self._clock() + timedelta(seconds=self.retry_after_s)
        await self._store.write([ops.SetAnalysis(call_id, "pending", again, due_at=due)])

    async def _final(
        self, call_id: str, status: str, analysis: Mapping[str, Any], urls: tuple[str, ...]
    ) -> None:
        analysis = {**analysis, "analyzed_at": self._clock().isoformat()}
        group: list[ops.SingleOp] = [ops.SetAnalysis(call_id, status, analysis)]
        if urls:
            data = {"call_id": call_id, "analysis": {**analysis, "status": status}}
            group.append(ops.EnqueueEvent(call_id, "call.analyzed", data, urls))
        await self._store.write([ops.Group(tuple(group))])
        logger.info("call %s analysis: %s", call_id, status, extra={"call_id": call_id})
        if self._on_written is not None and urls:
            self._on_written()
