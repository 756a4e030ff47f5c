"""End to end with the offline local provider (real Whisper/Piper models, no network).

A simulated Twilio caller whose voice is synthesised by Piper calls the gateway; the packaged
receptionist answers. Also: ``switchboard demo`` itself, and two calls at once.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from switchboard.demo import run_demo
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.providers.local import synth
from switchboard.store import CallStore
from tests.conftest import UNIT
from tests.e2e.harness import agent_book, read_only_call, running_app, telnyx_env, twilio_env
from tests.meaning import means

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.local]


def caller_script(*lines: tuple[str, float], lead_s: float = 4.5) -> bytes:
    return synth.conversation(lines, lead_s=lead_s)


def local_agent_env(twilio: TwilioEmulator) -> dict[str, str]:
    return twilio_env(twilio, "local")


async def test_local_hours_then_goodbye_hangs_up_after_the_goodbye(tmp_path: Path) -> None:
    audio = caller_script(("What are your opening hours?", 9.0), ("That's all, goodbye.", 6.0))
    book = agent_book(provider="local", greeting="Hello, Acme here.")
    async with TwilioEmulator(linger_s=2.0, max_call_s=60) as twilio:
        async with running_app(tmp_path, local_agent_env(twilio), agents=book) as (base, _s, _a):
            twilio.dial_in(f"{base}/twilio/voice", audio=audio)
            (report,) = await twilio.wait_calls(timeout_s=60 * UNIT)
        hangups = [r for r in twilio.requests if r.get("Status") == "completed"]
    assert report.violations == []
    assert hangups, "end_call hangs up through the carrier"
    detail = await read_only_call(tmp_path)
    said = [(t.role, t.text.lower()) for t in detail.transcript]
    caller_lines = [text for role, text in said if role == "caller"]
    # by meaning, not exact strings: Whisper has heard "opening now" and "that's all. bye."
    assert any(means(text, "hours") for text in caller_lines), caller_lines
    assert any(means(text, "goodbye") for text in caller_lines), caller_lines
    agent_lines = [text for role, text in said if role == "agent"]
    assert any("open" in text for text in agent_lines)  # the hours answer
    assert [t.name for t in detail.tool_calls] == ["end_call"]
    assert detail.record.end_reason == "agent_hangup"
    assert "bye" in agent_lines[-1], "the goodbye was spoken before the hang-up"
    assert detail.latencies and all(lat.latency_ms < 3000 * UNIT for lat in detail.latencies)


async def test_two_local_calls_at_once_are_both_answered(tmp_path: Path) -> None:
    audio = caller_script(("Where are you located?", 8.0))
    book = agent_book(provider="local", greeting="Hi.", tools=["end_call"])
    async with TwilioEmulator(linger_s=1.0, max_call_s=30) as twilio:  # noqa: SIM117
        async with running_app(tmp_path, local_agent_env(twilio), agents=book) as (base, _s, _a):
            twilio.dial_in(f"{base}/twilio/voice", audio=audio)
            twilio.dial_in(f"{base}/twilio/voice", audio=audio)
            reports = await twilio.wait_calls(timeout_s=60 * UNIT)
    assert len(reports) == 2
    assert all(r.violations == [] for r in reports)
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await store.migrate()
    page = await store.list_calls()
    details = [await store.get_call(c.id) for c in page.items]
    await store.aclose()
    assert len(details) == 2
    for detail in details:
        assert detail is not None
        caller = [t.text for t in detail.transcript if t.role == "caller"]
        assert any(means(text, "location") for text in caller), caller
        assert sum(1 for t in detail.transcript if t.role == "agent") >= 2  # greeting + answer


async def test_demo_runs_offline_and_writes_its_recording(tmp_path: Path) -> None:
    out = tmp_path / "heard.wav"
    code = await run_demo(out=out, database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    assert code == 0
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 8000
        assert wav.getnframes() > 8000 * 10
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    await store.migrate()
    (record,) = (await store.list_calls()).items
    detail = await store.get_call(record.id)
    await store.aclose()
    assert detail is not None
    assert detail.record.end_reason == "transferred"
    assert [t.name for t in detail.tool_calls] == ["transfer_call"]


async def test_telnyx_call_answered_by_the_local_provider(tmp_path: Path) -> None:
    from switchboard.audio import ulaw_to_pcm16
    from switchboard.emulators.telnyx import TelnyxEmulator, wav_bytes

    audio = caller_script(("Where are you located?", 7.0))
    book = agent_book(provider="local", greeting="Hi.", tools=["end_call"])
    async with TelnyxEmulator(tail_ms=3000, max_call_ms=30_000) as telnyx:
        env = telnyx_env(telnyx, "local")
        async with running_app(tmp_path, env, agents=book) as (base, _s, _a):
            call = await telnyx.place_inbound_call(
                to="+15550100000",
                from_="+15550111111",
                audio=wav_bytes(ulaw_to_pcm16(audio), 8000),
                webhook_url=f"{base}/telnyx/webhook",
            )
            report = await call.wait(60 * UNIT)
    assert report.violations == []
    detail = await read_only_call(tmp_path)
    assert detail.record.carrier == "telnyx" and detail.record.provider == "local"
    caller = [t.text for t in detail.transcript if t.role == "caller"]
    assert any(means(text, "location") for text in caller), caller
    assert sum(1 for t in detail.transcript if t.role == "agent") >= 2  # greeting + answer
    assert len(detail.latencies) == 1
