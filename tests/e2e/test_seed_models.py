"""The seed's model list, walked end to end: each model takes one call turn, or says why not.

The seed names OpenAI ``gpt-4o-mini-realtime-preview-2024-12-17`` (default) and
``gpt-4o-realtime-preview-2024-12-17``; Gemini ``gemini-2.5-flash-preview-native-audio-dialog``
(default) and ``gemini-2.5-pro``; the Deepgram pipeline with nova-2 or whisper STT, Gemini 2.5
Flash as its LLM and several Deepgram voices. Each runs a real call: Twilio emulator → app →
provider emulators → back, one caller turn answered, the record checked. ``gemini-2.5-pro`` is a
text model, so it runs as the pipeline's LLM (thought summaries asked for, and never spoken);
asked for as a Live model, and whisper asked for as a streaming STT, the call is refused with the
reason in the log — the service would refuse both (Live 1008 at setup; Deepgram does not stream
Whisper).
"""

from __future__ import annotations

import logging
import re
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
from switchboard.emulators.twilio import TwilioEmulator
from tests.e2e.harness import agent_book, caller_pcm, read_only_call, running_app, twilio_env

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT: list[dict[str, Any]] = [
    {"caller": "what are your opening hours", "say": "We are open nine to five."},
]


@dataclass(frozen=True)
class SeedModel:
    """One seed model and the agent settings that select it."""

    provider: str
    model: str | None = None
    llm_model: str | None = None
    voice: str | None = None
    #: Served by: the emulator model each service must have seen.
    expect: dict[str, str] = field(default_factory=dict)


WALK = {
    "openai-gpt-4o-mini-realtime-preview-2024-12-17": SeedModel(
        "openai", "gpt-4o-mini-realtime-preview-2024-12-17"
    ),
    "openai-gpt-4o-realtime-preview-2024-12-17": SeedModel(
        "openai", "gpt-4o-realtime-preview-2024-12-17"
    ),
    "gemini-2.5-flash-preview-native-audio-dialog": SeedModel(
        "gemini", "gemini-2.5-flash-preview-native-audio-dialog"
    ),
    "deepgram-nova-2-gemini-2.5-flash-aura-asteria-en": SeedModel(
        "deepgram", "nova-2", None, "aura-asteria-en", {"llm": "gemini-2.5-flash"}
    ),
    "deepgram-nova-2-gemini-2.5-flash-aura-luna-en": SeedModel(
        "deepgram", "nova-2", "gemini-2.5-flash", "aura-luna-en", {"llm": "gemini-2.5-flash"}
    ),
    "gemini-2.5-pro-as-pipeline-llm-aura-2-thalia-en": SeedModel(
        "deepgram", "nova-2", "gemini-2.5-pro", "aura-2-thalia-en", {"llm": "gemini-2.5-pro"}
    ),
}


@dataclass
class Emulators:
    env: dict[str, str]
    openai: OpenAIRealtimeEmulator | None = None
    gemini: GeminiEmulator | None = None
    deepgram: DeepgramEmulator | None = None


@asynccontextmanager
async def emulators_for(provider: str, stack: AsyncExitStack) -> AsyncIterator[Emulators]:
    """The provider emulators ``provider`` needs; their violations are checked afterwards."""
    if provider == "openai":
        oai = await stack.enter_async_context(
            OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0)
        )
        yield Emulators({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": oai.base_url}, oai)
        assert oai.violations == [] and oai.refused_models == []
        return
    gem = await stack.enter_async_context(GeminiEmulator(script=SCRIPT, realtime=False))
    env = {"GEMINI_API_KEY": "g-test", "GEMINI_BASE_URL": gem.base_url}
    if provider == "gemini":
        yield Emulators(env, gemini=gem)
    else:
        dg = await stack.enter_async_context(DeepgramEmulator(script=SCRIPT, ms_per_char=30.0))
        env |= {"DEEPGRAM_API_KEY": "dg-test", "DEEPGRAM_BASE_URL": dg.base_url}
        yield Emulators(env, gemini=gem, deepgram=dg)
        assert dg.violations == []
    assert gem.violations == []


def _plain(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


@pytest.mark.parametrize("case", list(WALK))
async def test_seed_model_takes_one_turn(tmp_path: Path, case: str) -> None:
    seed = WALK[case]
    agent = {"provider": seed.provider, "model": seed.model, "llm_model": seed.llm_model}
    agent |= {"voice": seed.voice} if seed.voice else {}
    options = {"deepgram": {"include_thoughts": True}}  # thinking LLMs: summaries, unspoken
    async with AsyncExitStack() as stack, emulators_for(seed.provider, stack) as emus:
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = emus.env | twilio_env(twilio)
        books = agent_book(**agent)
        async with running_app(tmp_path, env, agents=books, provider_options=options) as (
            base,
            _settings,
            _app,
        ):
            pcm = caller_pcm("what are your opening hours", gap_ms=3500)
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm), linger_s=1.5)
            (report,) = await twilio.wait_calls(timeout_s=40)
    assert report.violations == []
    detail = await read_only_call(tmp_path)
    record = detail.record
    assert (record.provider, record.status) == (seed.provider, "completed")
    said = [(t.role, _plain(t.text)) for t in detail.transcript]
    assert ("agent", "we are open nine to five") in said, said
    if emus.openai is not None:
        (created,) = [e for e in emus.openai.sent if e["type"] == "session.created"]
        assert created["session"]["model"] == seed.model == record.model
    elif emus.deepgram is None:
        assert emus.gemini is not None
        assert emus.gemini.live.setups[0]["model"] == f"models/{seed.model}"
        assert record.model == seed.model
    else:
        assert emus.gemini is not None
        assert emus.deepgram.listen_queries[0]["model"] == seed.model == record.model
        assert {q["model"] for q in emus.deepgram.speak_queries} == {seed.voice}
        assert set(emus.gemini.rest.request_models) == {seed.expect["llm"]}
        spoken = " ".join(m.get("text", "") for m in emus.deepgram.speak_messages)
        spoken += " ".join(r["text"] for r in emus.deepgram.rest_requests)
        if seed.expect["llm"] == "gemini-2.5-pro":
            assert emus.gemini.rest.thoughts_sent, "the emulator sent thought summaries"
            sent = emus.gemini.rest.requests[0]["generationConfig"]["thinkingConfig"]
            assert sent == {"thinkingBudget": 128, "includeThoughts": True}
        for thought in emus.gemini.rest.thoughts_sent:
            assert _plain(thought) not in _plain(spoken)
            assert all(_plain(thought) not in text for _, text in said)
        assert record.cost is not None
        price = {"gemini-2.5-flash": 2.5, "gemini-2.5-pro": 10.0}[seed.expect["llm"]]
        output = [x for x in record.cost.lines if x.item == "output text tokens"]
        assert output and output[0].unit_price == price


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (
            {"provider": "gemini", "model": "gemini-2.5-pro"},
            "'gemini-2.5-pro' is served by gemini.generate_content",
        ),
        ({"provider": "deepgram", "model": "whisper"}, "recorded files only"),
    ],
    ids=["gemini-2.5-pro-as-live-model", "deepgram-whisper-streaming"],
)
async def test_seed_model_the_service_would_refuse_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, agent: dict[str, str], reason: str
) -> None:
    async with AsyncExitStack() as stack, emulators_for(agent["provider"], stack) as emus:
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = emus.env | twilio_env(twilio)
        with caplog.at_level(logging.INFO, logger="switchboard"):
            async with running_app(tmp_path, env, agents=agent_book(**agent)) as (base, _s, _a):
                twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(caller_pcm("hello")))
                (report,) = await twilio.wait_calls(timeout_s=20)
    assert report.stream_sid is None  # refused before any media: nothing reached a service
    assert emus.gemini is not None and emus.gemini.live.received == []
    assert emus.deepgram is None or emus.deepgram.listen_queries == []
    rejected = [r.getMessage() for r in caplog.records if "not accepted" in r.getMessage()]
    assert rejected and reason in rejected[0]
