"""Every carrier × provider pair end to end over loopback.

Each pair runs the same call: the greeting, one caller turn answered, then the caller says
goodbye and the agent's ``end_call`` tool hangs up through the carrier once the goodbye has
played. Every emulated provider also goes through barge-in then transfer (Twilio), the caller
hanging up mid-reply (Telnyx) and a provider drop (Twilio; OpenAI's is in test_twilio_openai.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.deepgram import DeepgramEmulator
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxCallReport as TelnyxReport
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.e2e.harness import (
    agent_book,
    caller_pcm,
    caller_wav,
    read_only_call,
    running_app,
    telnyx_env,
    twilio_env,
    until_said,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT: list[dict[str, Any]] = [
    {"caller": "what are your opening hours", "say": "We are open nine to five."},
    {"caller": "thanks bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
]
UTTERANCES = ("what are your opening hours", "thanks bye")
GAPS = [2500, 5000]


@dataclass
class Providers:
    """The provider emulators one test started, and the settings that point at them."""

    env: dict[str, str] = field(default_factory=dict)
    openai: OpenAIRealtimeEmulator | None = None
    gemini: GeminiEmulator | None = None
    deepgram: DeepgramEmulator | None = None


@asynccontextmanager
async def provider_env(
    name: str, stack: AsyncExitStack, script: list[dict[str, Any]] | None = None
) -> AsyncIterator[Providers]:
    """Start the emulators ``name`` needs (scripted); after the test, check their violations."""
    script = SCRIPT if script is None else script
    match name:
        case "openai":
            oai = await stack.enter_async_context(
                OpenAIRealtimeEmulator(script=script, ms_per_char=30.0)
            )
            yield Providers({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": oai.base_url}, oai)
            assert oai.violations == []
        case "gemini":
            gem = await stack.enter_async_context(GeminiEmulator(script=script, realtime=False))
            env = {"GEMINI_API_KEY": "g-test", "GEMINI_BASE_URL": gem.base_url}
            yield Providers(env, gemini=gem)
            assert gem.live.violations == []
        case "deepgram":
            dg = await stack.enter_async_context(DeepgramEmulator(script=script, ms_per_char=30.0))
            gem = await stack.enter_async_context(GeminiEmulator(script=script))
            env = {
                "DEEPGRAM_API_KEY": "dg-test",
                "DEEPGRAM_BASE_URL": dg.base_url,
                "GEMINI_API_KEY": "g-test",
                "GEMINI_BASE_URL": gem.base_url,
            }
            yield Providers(env, gemini=gem, deepgram=dg)
            assert dg.violations == [] and gem.rest.violations == []
        case _:
            raise AssertionError(name)


async def telnyx_call(
    telnyx: TelnyxEmulator, base: str, audio: bytes, timeout_s: float
) -> TelnyxReport:
    """One inbound Telnyx call to the app at ``base``; returns the network's report."""
    call = await telnyx.place_inbound_call(
        to="+15550100000",
        from_="+15550111111",
        audio=audio,
        webhook_url=f"{base}/telnyx/webhook",
    )
    return await call.wait(timeout_s * UNIT)


def _plain(text: str) -> str:
    """Lower case without punctuation: Deepgram's smart_format capitalises and punctuates."""
    return "".join(c for c in text.lower() if c.isalnum() or c == " ").strip()


def check_record_and_transcript(said: list[tuple[str, str]]) -> None:
    plain = [(role, _plain(text)) for role, text in said]
    assert plain[0] == ("agent", "hello thanks for calling")
    assert ("caller", "what are your opening hours") in plain
    assert ("agent", "we are open nine to five") in plain
    assert plain[-1] == ("agent", "goodbye")


@pytest.mark.parametrize("provider", ["openai", "gemini", "deepgram"])
async def test_twilio_pair(tmp_path: Path, provider: str) -> None:
    async with AsyncExitStack() as stack, provider_env(provider, stack) as providers:
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = providers.env | twilio_env(twilio, provider)
        async with running_app(tmp_path, env) as (base, _settings, _app):
            pcm = caller_pcm(*UTTERANCES, gap_ms=GAPS)
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
        hangups = [r for r in twilio.requests if r.get("Status") == "completed"]
    assert report.violations == []
    assert hangups, "end_call must hang up through Twilio's REST API"
    detail = await read_only_call(tmp_path)
    assert detail.record.provider == provider
    assert detail.record.end_reason == "agent_hangup"
    check_record_and_transcript([(t.role, t.text) for t in detail.transcript])
    assert len(detail.latencies) == 2, detail.latencies  # both caller turns were timed
    assert [t.name for t in detail.tool_calls] == ["end_call"]


@pytest.mark.parametrize("provider", ["openai", "gemini", "deepgram"])
async def test_telnyx_pair(tmp_path: Path, provider: str) -> None:
    async with AsyncExitStack() as stack, provider_env(provider, stack) as providers:
        telnyx = await stack.enter_async_context(TelnyxEmulator(tail_ms=8000))
        env = providers.env | telnyx_env(telnyx, provider)
        async with running_app(tmp_path, env) as (base, _settings, _app):
            audio = caller_wav(*UTTERANCES, gap_ms=GAPS)
            report = await telnyx_call(telnyx, base, audio, 40)
    assert report.violations == []
    assert "hangup" in report.commands
    detail = await read_only_call(tmp_path)
    assert detail.record.provider == provider
    assert detail.record.end_reason == "agent_hangup"
    check_record_and_transcript([(t.role, t.text) for t in detail.transcript])
    assert len(detail.latencies) == 2, detail.latencies  # both caller turns were timed


LONG_REPLY = (
    "Let me tell you all about our many services, our opening hours on every single day of "
    "the week, and the history of this fine establishment since it first opened."
)
BARGE_SCRIPT: list[dict[str, Any]] = [
    {"caller": "tell me everything", "say": LONG_REPLY},
    {
        "caller": "billing please",
        "tool": {"name": "transfer_call", "arguments": {"destination": "+15550199999"}},
        "say": "Transferring you now.",
    },
]


@pytest.mark.parametrize("provider", ["openai", "gemini", "deepgram"])
async def test_twilio_barge_in_then_transfer(tmp_path: Path, provider: str) -> None:
    async with AsyncExitStack() as stack, provider_env(provider, stack, BARGE_SCRIPT) as providers:
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = providers.env | twilio_env(twilio, provider)
        book = agent_book(transfer_allow=["+15550199999"])  # transfers are denied by default
        async with running_app(tmp_path, env, agents=book) as (base, _settings, _app):
            pcm = caller_pcm("tell me everything", "billing please", gap_ms=[1800, 7000])
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
    assert report.violations == []
    assert report.clears >= 1, "barge-in clears the carrier's buffer"
    assert report.dialed == ["+15550199999"]
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "transferred"
    interrupted = [t for t in detail.transcript if t.interrupted]
    assert interrupted and interrupted[0].role == "agent"
    assert len(interrupted[0].text) < len(LONG_REPLY)
    assert any(e.kind == "barge_in" for e in detail.timeline)
    assert [t.name for t in detail.tool_calls] == ["transfer_call"]


@pytest.mark.parametrize("provider", ["openai", "gemini", "deepgram"])
async def test_telnyx_caller_hangs_up_mid_reply(tmp_path: Path, provider: str) -> None:
    script: list[dict[str, Any]] = [{"caller": "tell me everything", "say": LONG_REPLY}]
    async with AsyncExitStack() as stack, provider_env(provider, stack, script) as providers:
        telnyx = await stack.enter_async_context(TelnyxEmulator(max_call_ms=5000))
        env = providers.env | telnyx_env(telnyx, provider)
        async with running_app(tmp_path, env) as (base, _settings, _app):
            audio = caller_wav("tell me everything", gap_ms=8000)
            report = await telnyx_call(telnyx, base, audio, 30)
    assert report.violations == []
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "caller_hangup"
    assert detail.record.status == "completed"
    last = detail.transcript[-1]
    assert last.role == "agent" and last.interrupted
    assert len(last.text) < len(LONG_REPLY)


@pytest.mark.parametrize("provider", ["gemini", "deepgram"])
async def test_twilio_provider_drop_mid_call(tmp_path: Path, provider: str) -> None:
    """The provider's socket drops between two turns; the call goes on (OpenAI: see twilio)."""
    script: list[dict[str, Any]] = [
        {"caller": "first question", "say": "First answer."},
        {"caller": "second question", "say": "Second answer."},
    ]
    async with AsyncExitStack() as stack, provider_env(provider, stack, script) as providers:
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = providers.env | twilio_env(twilio, provider)
        async with running_app(tmp_path, env) as (base, _settings, _app):
            pcm = caller_pcm("first question", "second question", gap_ms=[3500, 3000])
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            # the first answer has been given (and heard), the second question not yet asked
            await until_said(
                tmp_path, lambda said: any(_plain(text) == "first answer" for _, text in said)
            )
            if providers.deepgram is not None:
                assert await providers.deepgram.drop_listen_sockets() == 1
            else:
                assert providers.gemini is not None
                await providers.gemini.live.drop_all()
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
    assert report.violations == []
    detail = await read_only_call(tmp_path)
    said = [(t.role, _plain(t.text)) for t in detail.transcript]
    assert ("agent", "first answer") in said
    assert ("agent", "second answer") in said
    if provider == "gemini":
        kinds = [e.kind for e in detail.timeline]
        assert "provider.reconnecting" in kinds and "provider.reconnected" in kinds
