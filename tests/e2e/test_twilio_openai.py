"""End to end over loopback: simulated Twilio caller → app → OpenAI Realtime emulator.

Covers the bridge's call flows: greeting, a caller turn answered, a tool ending the call after
the goodbye is heard, barge-in (clear + truncate at the played ms), transfer, the caller hanging
up mid-reply, and the provider dropping mid-call.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.e2e.harness import (
    agent_book,
    caller_pcm,
    openai_env,
    openai_twilio_app,
    place_twilio_call,
    read_only_call,
    running_app,
    twilio_env,
    until_said,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LONG_REPLY = (
    "Let me tell you all about our many services, our opening hours on every single day of "
    "the week, and the history of this fine establishment since it first opened."
)


async def test_greeting_turn_and_end_call_after_goodbye(tmp_path: Path) -> None:
    script: list[dict[str, Any]] = [
        {"caller": "what are your opening hours", "say": "We are open nine to five."},
        {"caller": "thanks bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
    ]
    async with openai_twilio_app(tmp_path, script) as (oai, twilio, base):
        pcm = caller_pcm("what are your opening hours", "thanks bye", gap_ms=[1500, 4000])
        report = await place_twilio_call(twilio, base, pcm)
        hangups = [r for r in twilio.requests if r.get("Status") == "completed"]
    assert report.violations == [] and oai.violations == [] and twilio.violations == []
    assert report.marks_acked == report.marks_received > 0
    assert report.heard_ms > 1500
    # the caller's 20 ms frames reach OpenAI two at a time (BaseProvider.input_batch_ms): 40 ms
    # of μ-law per append, and the caller's audio goes on (a frame or two may arrive before
    # the provider is bound, one may wait in the batch at the hang-up)
    appends = [e["audio"] for e in oai.received if e.get("type") == "input_audio_buffer.append"]
    sizes = {len(base64.b64decode(a)) for a in appends}
    assert sizes == {320}, sizes
    assert report.frames_sent - 5 <= 2 * len(appends) <= report.frames_sent
    assert hangups, "end_call must hang up through the REST API"
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "agent_hangup"
    said = [(t.role, t.text) for t in detail.transcript]
    assert said[0] == ("agent", "Hello, thanks for calling.")
    assert ("caller", "what are your opening hours") in said
    assert ("agent", "We are open nine to five.") in said
    assert said[-1] == ("agent", "Goodbye!")  # the goodbye was heard before the hang-up
    assert [t.name for t in detail.tool_calls] == ["end_call"]
    assert detail.tool_calls[0].ok
    assert len(detail.latencies) == 2
    usage = detail.record.usage
    assert usage is not None and usage.output_audio_tokens > 0
    assert detail.record.cost_total is not None and detail.record.cost_total > 0


async def test_barge_in_clears_and_truncates_at_played_ms(tmp_path: Path) -> None:
    script = [
        {"caller": "tell me everything", "say": LONG_REPLY},
        {"caller": "stop please", "say": "Sorry, go ahead."},
    ]
    async with openai_twilio_app(tmp_path, script) as (oai, twilio, base):
        pcm = caller_pcm("tell me everything", "stop please", gap_ms=[1800, 2500])
        report = await place_twilio_call(twilio, base, pcm)
    assert report.clears >= 1
    truncates = [e for e in oai.received if e.get("type") == "conversation.item.truncate"]
    assert len(truncates) == 1
    played = truncates[0]["audio_end_ms"]
    full_ms = len(LONG_REPLY) * 30
    assert 0 < played < full_ms
    assert report.dropped_ms > 0
    detail = await read_only_call(tmp_path)
    interrupted = [t for t in detail.transcript if t.interrupted]
    assert len(interrupted) == 1
    cut = interrupted[0].text
    assert cut and LONG_REPLY.startswith(cut) and len(cut) < len(LONG_REPLY)
    assert ("agent", "Sorry, go ahead.") in [(t.role, t.text) for t in detail.transcript]
    barge = [e for e in detail.timeline if e.kind == "barge_in"]
    assert barge and barge[0].data["played_ms"] == played


async def test_transfer_dials_the_destination(tmp_path: Path) -> None:
    script = [
        {
            "caller": "billing please",
            "tool": {"name": "transfer_call", "arguments": {"destination": "+15550199999"}},
            "say": "Transferring you now.",
        }
    ]
    book = agent_book(transfer_allow=["+15550199999"])  # transfers are denied by default
    async with openai_twilio_app(tmp_path, script, agents=book) as (_oai, twilio, base):
        report = await place_twilio_call(twilio, base, caller_pcm("billing please", gap_ms=6000))
    assert report.dialed == ["+15550199999"]
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "transferred"
    assert ("agent", "Transferring you now.") in [(t.role, t.text) for t in detail.transcript]


async def test_caller_hangs_up_mid_reply(tmp_path: Path) -> None:
    script = [{"caller": "tell me everything", "say": LONG_REPLY}]
    async with openai_twilio_app(tmp_path, script) as (oai, twilio, base):
        pcm = caller_pcm("tell me everything", gap_ms=8000)
        report = await place_twilio_call(twilio, base, pcm, max_call_s=4.5)
        assert oai.connection_count == 1
    assert report.heard_ms < len(LONG_REPLY) * 30 + 2000
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "caller_hangup"
    assert detail.record.status == "completed"
    last = detail.transcript[-1]
    assert last.role == "agent" and last.interrupted
    assert len(last.text) < len(LONG_REPLY)


async def test_provider_drop_mid_call_reconnects_and_the_call_goes_on(tmp_path: Path) -> None:
    script = [
        {"caller": "first question", "say": "First answer."},
        {"caller": "second question", "say": "Second answer."},
    ]
    async with openai_twilio_app(tmp_path, script, drop_after_responses=2) as (oai, twilio, base):
        pcm = caller_pcm("first question", "second question", gap_ms=[2500, 2500])
        await place_twilio_call(twilio, base, pcm)
        assert oai.connection_count >= 2
    detail = await read_only_call(tmp_path)
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", "First answer.") in said
    assert ("agent", "Second answer.") in said
    kinds = [e.kind for e in detail.timeline]
    assert "provider.reconnecting" in kinds and "provider.reconnected" in kinds


@pytest.mark.local
async def test_provider_failure_apologises_and_ends_the_call_cleanly(tmp_path: Path) -> None:

    oai = OpenAIRealtimeEmulator(script=[{"caller": "hello", "say": "Hi there."}])
    await oai.__aenter__()
    async with TwilioEmulator() as twilio:
        env = openai_env(oai) | twilio_env(twilio, "openai")
        fast_fail = {"openai": {"backoff_base_s": 0.05, "max_reconnect_attempts": 2}}
        async with running_app(tmp_path, env, provider_options=fast_fail) as (base, _s, _a):
            twilio.dial_in(
                f"{base}/twilio/voice", audio=pcm16_to_ulaw(caller_pcm("hello", gap_ms=9000))
            )
            # the caller's "hello" cuts the greeting short; the answer to it has been heard
            await until_said(tmp_path, lambda said: ("agent", "Hi there.") in said)
            await oai.__aexit__(None, None, None)  # the provider is gone for good
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
        hangups = [r for r in twilio.requests if r.get("Status") == "completed"]
    assert report.violations == []
    assert hangups, "the call is ended through the carrier"
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "provider_failed"
    assert detail.record.status == "failed"
    said = [(t.role, t.text) for t in detail.transcript]
    assert said[-1][0] == "agent" and "technical trouble" in said[-1][1]
    assert report.heard_ms > 2500  # greeting + the apology


async def test_silence_reprompts_then_hangs_up(tmp_path: Path) -> None:
    book = agent_book(limits={"silence_timeout_s": 2, "silence_hangup_s": 5})
    async with openai_twilio_app(tmp_path, [], agents=book) as (_oai, twilio, base):
        report = await place_twilio_call(twilio, base, bytes(8000 * 2 * 12))  # a silent caller
    assert report.heard_ms > 1200  # the greeting and the re-prompt
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "silence"
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", "Are you still there?") in said
    kinds = [e.kind for e in detail.timeline]
    assert kinds.index("call.reprompt") < kinds.index("call.silence_hangup")


async def test_maximum_duration_ends_politely(tmp_path: Path) -> None:
    book = agent_book(limits={"max_call_seconds": 4}, goodbye="Time is up, goodbye.")
    script = [{"caller": "tell me everything", "say": LONG_REPLY}]
    async with openai_twilio_app(tmp_path, script, agents=book) as (_oai, twilio, base):
        report = await place_twilio_call(
            twilio, base, caller_pcm("tell me everything", gap_ms=9000)
        )
    assert report.violations == []
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "max_duration"
    assert detail.transcript[-1].text == "Time is up, goodbye."
