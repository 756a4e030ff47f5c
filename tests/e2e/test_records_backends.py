"""A bridged call's record, in SQLite and in PostgreSQL (skipped with the reason when absent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.store import CallStore
from tests.backends import BACKENDS, database_target, drop_schema
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, openai_env, running_app, twilio_env

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_call_record_in_each_backend(tmp_path: Path, backend: str) -> None:
    url, schema = database_target(backend, tmp_path, prefix="sbe2e")
    script: list[dict[str, Any]] = [
        {"caller": "hi", "say": "Hello there."},
        {"caller": "bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
    ]
    store = CallStore(url, schema=schema, flush_interval_s=0.05)
    try:
        async with (
            OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
            TwilioEmulator() as twilio,
        ):
            env = openai_env(oai) | twilio_env(twilio, "openai")
            async with running_app(tmp_path, env, store=store) as (base, _s, _a):
                pcm = caller_pcm("hi", "bye", gap_ms=[2000, 4000])
                twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
                await twilio.wait_calls(timeout_s=30 * UNIT)
        reader = CallStore(url, schema=schema)
        await reader.migrate()
        (record,) = (await reader.list_calls()).items
        detail = await reader.get_call(record.id)
        usage = await reader.usage_summary()
        await reader.aclose()
    finally:
        if schema:
            await drop_schema(url, schema)
    assert detail is not None
    assert detail.record.end_reason == "agent_hangup" and detail.record.status == "completed"
    said = [(t.role, t.text) for t in detail.transcript]
    assert said == [
        ("agent", "Hello, thanks for calling."),
        ("caller", "hi"),
        ("agent", "Hello there."),
        ("caller", "bye"),
        ("agent", "Goodbye!"),
    ]
    assert [t.name for t in detail.tool_calls] == ["end_call"]
    assert len(detail.latencies) == 2
    assert detail.record.cost_total is not None and detail.record.cost_total > 0
    assert sum(row.calls for row in usage) == 1
