"""End to end over loopback: Telnyx network emulator → app → OpenAI Realtime emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.store import CallStore
from tests.conftest import UNIT
from tests.e2e.harness import caller_wav, openai_env, running_app, telnyx_env

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_greeting_turn_and_end_call(tmp_path: Path) -> None:
    script: list[dict[str, Any]] = [
        {"caller": "what are your opening hours", "say": "We are open nine to five."},
        {"caller": "thanks bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
    ]
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TelnyxEmulator(realtime=True, tail_ms=6000) as telnyx,
    ):
        env = openai_env(oai) | telnyx_env(telnyx, "openai")
        async with running_app(tmp_path, env) as (base, _settings, _app):
            call = await telnyx.place_inbound_call(
                to="+15550100000",
                from_="+15550111111",
                audio=caller_wav("what are your opening hours", "thanks bye"),
                webhook_url=f"{base}/telnyx/webhook",
            )
            report = await call.wait(40 * UNIT)
    assert report.violations == []
    assert oai.violations == []
    assert report.commands[:2] == ["answer", "streaming_start"]
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await store.migrate()
    page = await store.list_calls()
    assert len(page.items) == 1
    detail = await store.get_call(page.items[0].id)
    await store.aclose()
    assert detail is not None
    print(
        [(e.kind, e.data) for e in detail.timeline], report.commands, report.marks, report.heard_ms
    )
    assert "hangup" in report.commands  # end_call hung up through Call Control
    assert report.heard_ms > 1500  # greeting + answer + goodbye
    assert report.marks  # playout was acknowledged
    record = detail.record
    assert record.status == "completed" and record.end_reason == "agent_hangup"
    assert record.provider == "openai" and record.carrier == "telnyx"
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", "Hello, thanks for calling.") in said
    assert ("caller", "what are your opening hours") in said
    assert ("agent", "We are open nine to five.") in said
    assert [t.name for t in detail.tool_calls] == ["end_call"]
    assert detail.latencies and all(lat.latency_ms < 3000 * UNIT for lat in detail.latencies)
    kinds = [e.kind for e in detail.timeline]
    assert "tool.call" in kinds and "hangup.requested" in kinds
