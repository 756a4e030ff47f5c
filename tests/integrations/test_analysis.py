"""Post-call analysis: the spec, the schema asked of the LLM, validation of its answer (pure);
and the worker against the Gemini and OpenAI emulators over loopback, on a real store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.genai import types
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from switchboard.config import Settings, load_settings
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.emulators.openai_chat import OpenAIChatEmulator
from switchboard.integrations.analysis import (
    AnalysisError,
    AnalysisSpec,
    read_answer,
    response_schema,
    transcript_prompt,
)
from switchboard.integrations.analysis_worker import NO_KEY, AnalysisWorker
from switchboard.store import CallStore, ops
from switchboard.store.records import TranscriptEntry
from tests.backends import migrated_store
from tests.conformance import conform

pytestmark = pytest.mark.anyio

EXTRACT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "day": {"type": "string", "format": "date"},
        "party_size": {"type": "integer", "minimum": 1},
        "channel": {"enum": ["phone", "email"]},
    },
    "required": ["name", "day", "party_size"],
}
SPEC = AnalysisSpec(success="the caller got an appointment", extract=EXTRACT)
HOOK = "http://127.0.0.1:9/hooks"


# -- pure ----------------------------------------------------------------------------------------
def test_the_answer_schema_has_what_the_spec_asks() -> None:
    schema = response_schema(SPEC)
    assert schema["required"] == ["summary", "success", "extracted"]
    assert schema["properties"]["extracted"] == EXTRACT
    Draft202012Validator.check_schema(schema)
    only = response_schema(AnalysisSpec(summary=False, success="paid"))
    assert list(only["properties"]) == ["success"]
    assert not AnalysisSpec(summary=False).asks_for_anything()


def test_answers_are_validated_not_trusted() -> None:
    good: dict[str, Any] = {
        "summary": "Ana booked a table.",
        "success": {"met": True, "reason": "A slot was confirmed."},
        "extracted": {"name": "Ana", "day": "2026-12-08", "party_size": 2},
    }
    result = read_answer(SPEC, json.dumps(good))
    assert result["success"] == {
        "criterion": "the caller got an appointment",
        "met": True,
        "reason": "A slot was confirmed.",
    }
    assert result["extracted"] == good["extracted"]
    missing = {**good, "extracted": {"name": "Ana", "day": "2026-12-08"}}
    with pytest.raises(AnalysisError, match="party_size"):
        read_answer(SPEC, json.dumps(missing))
    wrong = {**good, "extracted": {**good["extracted"], "party_size": 0}}
    with pytest.raises(AnalysisError, match="extracted/party_size"):
        read_answer(SPEC, json.dumps(wrong))
    with pytest.raises(AnalysisError, match="not JSON"):
        read_answer(SPEC, "Sure! Here is the analysis:")


def test_specs_refuse_what_cannot_be_asked() -> None:
    with pytest.raises(ValidationError, match="type: object"):
        AnalysisSpec(extract={"type": "string"})
    with pytest.raises(ValidationError, match="JSON Schema"):
        AnalysisSpec(extract={"type": "object", "properties": {"x": {"type": "nope"}}})
    with pytest.raises(ValidationError, match="success"):
        AnalysisSpec(success="  ")
    with pytest.raises(ValidationError):
        AnalysisSpec.model_validate({"summary": True, "sumary": True})


def test_the_prompt_carries_the_transcript_and_the_questions() -> None:
    transcript = [
        TranscriptEntry(0, "caller", "Table for two on Tuesday, I'm Ana."),
        TranscriptEntry(1, "agent", "Booked!", interrupted=True),
    ]
    prompt = transcript_prompt(SPEC, transcript, outcome="caller_hangup", tool_calls=["book"])
    assert "caller: Table for two on Tuesday, I'm Ana." in prompt
    assert "agent: Booked! [cut off]" in prompt
    assert "book" in prompt and "caller_hangup" in prompt
    assert "the caller got an appointment" in prompt


# -- the worker ----------------------------------------------------------------------------------
@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CallStore]:
    target = (f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", None)
    async with migrated_store(target, flush_interval_s=0.02) as call_store:
        yield call_store


async def ended_call(store: CallStore, spec: AnalysisSpec, *, said: bool = True) -> str:
    call = await store.create_call(
        carrier="twilio", carrier_call_id="CA1", from_number="+15550001111", to_number="+1555"
    )
    recorder = store.recorder(call.id)
    if said:
        recorder.record_transcript("caller", "Hi, I'm Ana. A table for two on Tuesday please.")
        recorder.record_transcript("agent", "Done: Tuesday the 8th, for two, under Ana.")
    request = {"spec": spec.model_dump(mode="json"), "urls": [HOOK]}
    await recorder.finalize(
        "completed", "caller_hangup", also=(ops.RequestAnalysis(call.id, request),)
    )
    return call.id


async def analyse(store: CallStore, settings: Settings) -> dict[str, Any]:
    worker = AnalysisWorker(store, settings, retry_after_s=0.0)
    try:
        assert await worker.run_once() == 1
    finally:
        await worker.aclose()
    [detail] = [await store.get_call(c.id) for c in (await store.list_calls()).items]
    assert detail is not None and detail.record.analysis is not None
    return detail.record.analysis


async def analyzed_events(store: CallStore) -> list[dict[str, Any]]:
    rows = await store.outbox.deliveries(event_type="call.analyzed")
    return [json.loads(row.body)["data"] for row in rows]


async def test_gemini_fills_the_schema_and_the_result_is_kept_and_sent(
    store: CallStore,
) -> None:
    async with GeminiEmulator(api_key="g-key") as emu:
        await ended_call(store, SPEC)
        settings = load_settings(GEMINI_API_KEY="g-key", GEMINI_BASE_URL=emu.base_url)
        analysis = await analyse(store, settings)
    assert analysis["status"] == "done"
    assert (analysis["provider"], analysis["model"]) == ("gemini", "gemini-2.5-flash")
    Draft202012Validator(EXTRACT).validate(analysis["extracted"])
    assert set(analysis["extracted"]) == set(EXTRACT["properties"])
    assert isinstance(analysis["summary"], str) and isinstance(analysis["success"]["met"], bool)
    assert analysis["usage"]["output_text_tokens"] > 0
    [request] = emu.rest.requests
    config = conform(types.GenerationConfig, request["generationConfig"])
    assert config.response_mime_type == "application/json"
    assert config.response_json_schema == response_schema(SPEC)
    assert "Ana" in request["contents"][0]["parts"][0]["text"]
    assert emu.violations == []
    [event] = await analyzed_events(store)
    assert event["analysis"]["extracted"] == analysis["extracted"]


async def test_gemini_answer_as_scripted_is_what_the_record_keeps(store: CallStore) -> None:
    answer = {
        "summary": "Ana booked a table for two on Tuesday.",
        "success": {"met": True, "reason": "The agent confirmed the booking."},
        "extracted": {"name": "Ana", "day": "2026-12-08", "party_size": 2, "channel": "phone"},
    }
    async with GeminiEmulator(script=[json.dumps(answer)]) as emu:
        await ended_call(store, SPEC)
        analysis = await analyse(
            store, load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url)
        )
    assert analysis["summary"] == answer["summary"]
    assert analysis["extracted"] == answer["extracted"]
    assert analysis["success"]["met"] is True


async def test_an_answer_outside_the_schema_is_a_failure_not_a_result(store: CallStore) -> None:
    wrong = {"summary": "x", "success": {"met": True, "reason": "y"}, "extracted": {"name": 7}}
    async with GeminiEmulator(script=[json.dumps(wrong)]) as emu:
        await ended_call(store, SPEC)
        analysis = await analyse(
            store, load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url)
        )
    assert analysis["status"] == "failed"
    assert "does not match the schema" in analysis["error"]
    assert "extracted" not in analysis and "summary" not in analysis
    [event] = await analyzed_events(store)
    assert event["analysis"]["status"] == "failed"


async def test_openai_chat_runs_it_when_asked(store: CallStore) -> None:
    spec = AnalysisSpec(provider="openai", extract=EXTRACT)
    async with OpenAIChatEmulator(api_key="sk-test") as emu:
        await ended_call(store, spec)
        settings = load_settings(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=emu.base_url)
        analysis = await analyse(store, settings)
    assert (analysis["status"], analysis["provider"], analysis["model"]) == (
        "done",
        "openai",
        "gpt-4o-mini",
    )
    Draft202012Validator(EXTRACT).validate(analysis["extracted"])
    assert emu.violations == []


async def test_without_a_key_it_says_not_analysed(store: CallStore) -> None:
    await ended_call(store, SPEC)
    settings = load_settings(GEMINI_API_KEY="", OPENAI_API_KEY="")
    analysis = await analyse(store, settings)
    assert analysis == {
        "status": "not_analysed",
        "reason": NO_KEY,
        "analyzed_at": analysis["analyzed_at"],
    }
    [event] = await analyzed_events(store)
    assert event["analysis"]["status"] == "not_analysed"


async def test_a_provider_asked_for_without_its_key_is_named(store: CallStore) -> None:
    await ended_call(store, AnalysisSpec(provider="openai"))
    analysis = await analyse(store, load_settings(GEMINI_API_KEY="g", OPENAI_API_KEY=""))
    assert analysis["reason"] == "OPENAI_API_KEY is not set"


async def test_a_silent_call_is_not_analysed(store: CallStore) -> None:
    await ended_call(store, SPEC, said=False)
    analysis = await analyse(store, load_settings(GEMINI_API_KEY="k"))
    assert (analysis["status"], analysis["reason"]) == ("not_analysed", "nothing was said")


async def test_an_unreachable_llm_is_retried_then_given_up(store: CallStore) -> None:
    call_id = await ended_call(store, SPEC)
    settings = load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL="http://127.0.0.1:9")
    worker = AnalysisWorker(store, settings, retry_after_s=0.0, max_attempts=2)
    try:
        assert await worker.run_once() == 1
        detail = await store.get_call(call_id)
        assert detail is not None and detail.record.analysis == {"status": "pending"}
        assert await worker.run_once() == 1
    finally:
        await worker.aclose()
    detail = await store.get_call(call_id)
    assert detail is not None and detail.record.analysis is not None
    assert detail.record.analysis["status"] == "failed"
    assert "Gemini request failed" in detail.record.analysis["error"]
    assert datetime.fromisoformat(detail.record.analysis["analyzed_at"]) <= datetime.now(UTC)
