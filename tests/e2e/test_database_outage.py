"""Chaos: PostgreSQL dies in the middle of a call. The call goes on to its natural end (the
caller hears every reply, the agent hangs up), and once the database is back the whole record
is there: every transcript line, the tool call, the end reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.store import CallDetail, CallStore
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, openai_env, running_app, twilio_env
from tests.store.throwaway_pg import ThrowawayPostgres, throwaway_postgres
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SAID = [
    ("agent", "Hello, thanks for calling."),
    ("caller", "hi"),
    ("agent", "Hello there."),
    ("caller", "what time"),
    ("agent", "It is noon."),
    ("caller", "bye"),
    ("agent", "Goodbye!"),
]


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as server:
        yield server


async def _detail(reader: CallStore) -> CallDetail | None:
    try:
        page = await reader.list_calls()
        return await reader.get_call(page.items[0].id) if page.items else None
    except Exception:  # the server is down or still starting
        return None


async def test_a_call_outlives_the_database_and_its_record_is_complete(
    postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    script: list[dict[str, Any]] = [
        {"caller": "hi", "say": "Hello there."},
        {"caller": "what time", "say": "It is noon."},
        {"caller": "bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
    ]
    store = CallStore(postgres.url, flush_interval_s=0.05, spool_dir=tmp_path / "spool")
    reader = CallStore(postgres.url)
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        async with running_app(tmp_path, env, store=store) as (base, _settings, _app):
            pcm = caller_pcm("hi", "what time", "bye", gap_ms=[2500, 2500, 4000])
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))

            async def greeted() -> bool:
                detail = await _detail(reader)
                return detail is not None and len(detail.transcript) >= 1

            await eventually_async(greeted, limit_s=20, every_s=0.05, what="the greeting")
            await asyncio.to_thread(postgres.stop)  # the database dies mid-call
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
            assert store.writer.outage  # the rest of the call was held, not written
            await asyncio.to_thread(postgres.start)

            async def complete() -> CallDetail | None:
                detail = await _detail(reader)
                if detail is None or detail.record.status != "completed":
                    return None
                return detail if len(detail.transcript) == len(SAID) else None

            detail = await eventually_async(
                complete, limit_s=30, every_s=0.2, what="the whole record written"
            )
    await reader.aclose()
    # The call went on to the agent's goodbye: every reply played (an agent line is recorded
    # once the caller has heard it), no protocol violation, every mark acknowledged.
    assert report.violations == []
    assert report.marks_acked == report.marks_received > 0
    assert detail.record.end_reason == "agent_hangup"
    assert [(t.role, t.text) for t in detail.transcript] == SAID
    assert [t.name for t in detail.tool_calls] == ["end_call"]
    assert store.writer.dropped == 0
