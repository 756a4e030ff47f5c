"""Rich renderings of call lists and details (rendered to plain text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console, RenderableType

from switchboard.catalog import load_catalog
from switchboard.cost import estimate_call_cost
from switchboard.media import Usage
from switchboard.store import (
    CallDetail,
    CallPage,
    CallRecord,
    TimelineEvent,
    ToolCallRecord,
    TranscriptEntry,
    TurnLatency,
)
from switchboard.store.render import render_call_detail, render_call_list

T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


def text_of(renderable: RenderableType) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def record(**fields: object) -> CallRecord:
    base: dict[str, object] = {
        "id": "call_abc",
        "status": "completed",
        "created_at": T0,
        "carrier": "twilio",
        "carrier_call_id": "CA1",
        "provider": "openai",
        "model": "gpt-realtime",
        "agent": "receptionist",
        "from_number": "+15550001111",
        "to_number": "+15550002222",
        "duration_s": 75.0,
        "cost_total": 0.0421,
    }
    base.update(fields)
    return CallRecord(**base)  # type: ignore[arg-type]  # test data built from a dict


def test_call_list() -> None:
    page = CallPage(
        items=(record(), record(id="call_def", status="failed", cost_total=None)), next_cursor="c1"
    )
    out = text_of(render_call_list(page))
    assert "call_abc" in out
    assert "call_def" in out
    assert "2026-11-20 12:00:00" in out
    assert "openai / gpt-realtime" in out
    assert "1:15" in out
    assert "$0.0421" in out
    assert "--cursor c1" in out
    assert "no calls" in text_of(render_call_list(CallPage(items=())))


def test_call_detail() -> None:
    cost = estimate_call_cost(
        load_catalog(),
        provider="openai",
        model="gpt-realtime",
        usage=Usage(input_audio_tokens=3200),
        carrier="twilio",
        carrier_seconds=75,
    )
    detail = CallDetail(
        record=record(cost=cost, cost_total=cost.total, end_reason="agent_hung_up"),
        transcript=(
            TranscriptEntry(0, "agent", "Hello, how can I help?", 0, 1500),
            TranscriptEntry(1, "caller", "Where is my order?", 2100, 3000),
            TranscriptEntry(2, "agent", "Let me check that for", 3400, None, interrupted=True),
        ),
        tool_calls=(
            ToolCallRecord(
                0, "lookup_order", {"order_id": "A1"}, {"result": "shipped"}, True, 42.0, T0
            ),
            ToolCallRecord(1, "end_call", {}, {"error": "no call"}, False, 1.0, T0),
        ),
        timeline=(TimelineEvent(0, T0 + timedelta(milliseconds=250), "barge_in", {"ms": 640}),),
        latencies=(TurnLatency(1, 480.0), TurnLatency(2, 900.0), TurnLatency(3, 610.0)),
    )
    out = text_of(render_call_detail(detail))
    assert "Call call_abc" in out
    assert "agent_hung_up" in out
    assert "Let me check that for [interrupted]" in out
    assert "Where is my order?" in out
    assert "2.1s" in out
    assert "lookup_order" in out
    assert "order_id='A1'" in out
    assert "shipped" in out
    assert "no call" in out
    assert "12:00:00.250" in out
    assert "barge_in" in out
    assert "median 610 ms, max 900 ms" in out
    assert "openai input audio tokens: 3,200 × $32/M" in out
    assert "twilio call minutes: 2 × $0.0125/min" in out
    assert "as of 2026-11-01" in out


def test_detail_without_extras() -> None:
    out = text_of(render_call_detail(CallDetail(record=record(error="provider down"))))
    assert "no transcript" in out
    assert "cost: not recorded" in out
    assert "provider down" in out


def test_calls_show_prints_the_analysis_or_why_there_is_none() -> None:
    done = {
        "status": "done",
        "summary": "Ana booked a table for two.",
        "success": {"criterion": "an appointment", "met": True, "reason": "Confirmed."},
        "extracted": {"name": "Ana", "party_size": 2},
        "provider": "gemini",
        "model": "gemini-2.5-flash",
    }
    text = text_of(render_call_detail(CallDetail(record=record(analysis=done))))
    assert "Ana booked a table for two." in text
    assert "met: an appointment — Confirmed." in text
    assert '"party_size": 2' in text and "gemini gemini-2.5-flash" in text
    missing = {"status": "not_analysed", "reason": "no text LLM is configured"}
    text = text_of(render_call_detail(CallDetail(record=record(analysis=missing))))
    assert "not analysed — no text LLM is configured" in text
    failed = {"status": "failed", "error": "the answer does not match the schema"}
    assert "failed — the answer" in text_of(
        render_call_detail(CallDetail(record=record(analysis=failed)))
    )
    assert "analysis" not in text_of(render_call_detail(CallDetail(record=record())))
