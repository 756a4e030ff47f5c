"""Provider failover mid-call, end to end (#17 §1): real sockets, the Twilio (and Telnyx)
emulator calling.

Each provider (OpenAI Realtime, Gemini Live, the Deepgram pipeline) answers the caller's first
turn, then fails — dropped with every reconnect refused, or accepting audio and going silent.
The call moves to the agent's next provider: the caller hears it answer the second turn, and
the fallback's emulator shows it was given the earlier turns (greeting, first question and
answer) as its history.
"""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.common import Script, ScriptedTurn
from switchboard.emulators.deepgram import DeepgramEmulator
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.store import CallStore
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    agent_book,
    caller_pcm,
    caller_wav,
    read_only_call,
    running_app,
    telnyx_env,
    twilio_env,
    until_said,
)
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
FIRST = {"caller": "what are your opening hours", "say": "We are open nine to five."}
SECOND = {"caller": "are you open on sunday", "say": "On sunday we are closed."}
#: provider → its fallback in these tests (each fallback speaks another protocol)
FALLBACK = {"openai": "gemini", "gemini": "deepgram", "deepgram": "openai"}
FAST = {  # short reconnect backoffs: the failover, not the give-up, must move the call
    "openai": {"backoff_base_s": 0.2},
    "gemini": {"reconnect_backoff_s": 0.2},
}


def _plain(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c == " ").strip()


async def ended_call(http: httpx.AsyncClient) -> dict[str, Any]:
    """``GET /v1/calls/{id}`` of the one call, once its record is final."""

    async def final() -> dict[str, Any] | None:
        (listed,) = (await http.get("/v1/calls")).json()["items"]
        call: dict[str, Any] = (await http.get(f"/v1/calls/{listed['id']}")).json()
        return call if call["ended_at"] is not None else None

    return await eventually_async(final, limit_s=10, what="the call's final record", every_s=0.1)


def assert_failover_record(call: dict[str, Any], primary: str, fallback: str) -> None:
    """The record (through the API) names both providers, the one that ended the call as its
    provider, and its cost is the sum of each provider's at its own prices."""
    assert call["providers"] == [primary, fallback], call["providers"]
    assert call["provider"] == fallback
    lines = call["cost"]["lines"]
    by_source: dict[str, float] = {}
    for line in lines:
        by_source[line["source"]] = by_source.get(line["source"], 0.0) + line["amount"]
    assert set(by_source) <= {primary, fallback, "twilio", "telnyx"}, by_source
    assert fallback in by_source, lines  # the fallback's usage is billed at its prices
    costs = next(e["data"] for e in call["timeline"] if e["kind"] == "call.cost_by_provider")
    for name in (primary, fallback):  # the same figures as the timeline's per-provider costs
        assert by_source.get(name, 0.0) == pytest.approx(costs[name], abs=1e-6), (name, lines)
    assert call["cost_total"] == pytest.approx(sum(by_source.values()), abs=1e-6)


class Emulators:
    """The provider emulators of one test; the primary speaks FIRST, the fallback SECOND."""

    def __init__(self, primary: str) -> None:
        self.primary, self.fallback = primary, FALLBACK[primary]
        self.env: dict[str, str] = {}
        self.openai: OpenAIRealtimeEmulator | None = None
        self.gemini: GeminiEmulator | None = None
        self.deepgram: DeepgramEmulator | None = None

    async def start(self, stack: AsyncExitStack) -> None:
        names = {self.primary, self.fallback}
        script = {n: [FIRST] if n == self.primary else [SECOND] for n in names}
        if "openai" in names:
            self.openai = await stack.enter_async_context(
                OpenAIRealtimeEmulator(script=script["openai"], ms_per_char=30.0)
            )
            self.env |= {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": self.openai.base_url}
        if names & {"gemini", "deepgram"}:  # Gemini Live, and the pipeline's LLM (REST)
            live = script.get("gemini", [FIRST])
            self.gemini = await stack.enter_async_context(
                GeminiEmulator(script=live, realtime=False)
            )
            if "deepgram" in names:
                self.gemini.rest.script = Script.from_obj(script["deepgram"])
            self.env |= {"GEMINI_API_KEY": "g-test", "GEMINI_BASE_URL": self.gemini.base_url}
        if "deepgram" in names:
            self.deepgram = await stack.enter_async_context(
                DeepgramEmulator(script=script["deepgram"], ms_per_char=30.0)
            )
            self.env |= {"DEEPGRAM_API_KEY": "dg-test", "DEEPGRAM_BASE_URL": self.deepgram.base_url}

    async def fail(self, mode: str) -> None:
        match self.primary:
            case "openai":
                assert self.openai is not None
                await self.openai.fail(mode)
            case "gemini":
                assert self.gemini is not None
                await self.gemini.live.fail(mode)
            case _:
                assert self.deepgram is not None
                await self.deepgram.fail(mode)

    def given_history(self) -> list[tuple[str, str]]:
        """What the fallback was given as the conversation so far."""
        match self.fallback:
            case "openai":
                assert self.openai is not None
                return self.openai.histories[0]
            case "gemini":
                assert self.gemini is not None
                return self.gemini.live.histories[0]
            case _:
                assert self.gemini is not None
                contents = self.gemini.rest.requests[0]["contents"]
                return [
                    (c["role"], " ".join(p.get("text", "") for p in c["parts"])) for c in contents
                ]

    def violations(self) -> list[Any]:
        out: list[Any] = []
        if self.openai is not None:
            out += self.openai.violations
        if self.gemini is not None:
            out += self.gemini.live.violations + self.gemini.rest.violations
        if self.deepgram is not None:
            out += self.deepgram.violations
        return out


@pytest.mark.parametrize("mode", ["drop", "silent"])
@pytest.mark.parametrize("primary", ["openai", "gemini", "deepgram"])
async def test_failover_mid_call(tmp_path: Path, primary: str, mode: str) -> None:
    async with AsyncExitStack() as stack:
        emulators = Emulators(primary)
        await emulators.start(stack)
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = emulators.env | twilio_env(twilio, primary)
        book = agent_book(
            fallback=[emulators.fallback],
            tools=[],
            limits={"max_call_seconds": 60, "silence_timeout_s": 30, "silence_hangup_s": 50},
        )
        async with running_app(tmp_path, env, agents=book, provider_options=FAST) as (base, *_):
            # the second question comes 9 s after the first: time to fail and to fail over
            pcm = caller_pcm(FIRST["caller"], SECOND["caller"], gap_ms=[9000, 9000])
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await until_said(
                tmp_path,
                lambda lines: any(
                    role == "agent" and _plain(text) == "we are open nine to five"
                    for role, text in lines
                ),
                limit_s=20 * UNIT,
            )
            failed_at = time.monotonic()
            await emulators.fail(mode)
            said = await until_said(
                tmp_path,
                lambda lines: any(
                    role == "agent" and _plain(text) == "on sunday we are closed"
                    for role, text in lines
                ),
                limit_s=30 * UNIT,
            )
            heard_after_s = time.monotonic() - failed_at
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
            async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
                providers = {p["name"]: p for p in (await http.get("/v1/providers")).json()}
                metrics = (await http.get("/metrics")).text
                call = await ended_call(http)
    assert report.violations == []
    assert_failover_record(call, primary, emulators.fallback)
    assert emulators.violations() == []
    given = [(role, _plain(text)) for role, text in emulators.given_history()]
    assert ("user", "what are your opening hours") in given, given
    assert any(r in ("assistant", "model") and t == "we are open nine to five" for r, t in given)
    assert any(t == "hello thanks for calling" for _, t in given), given
    lines = [(role, _plain(text)) for role, text in said]
    assert heard_after_s < 25 * UNIT, (heard_after_s, lines)
    assert providers[primary]["health"]["recent_failures"] >= 1
    assert providers[primary]["health"]["state"] == "closed"  # one failure does not open it
    assert f'from="{primary}",reason="' in metrics and f'to="{emulators.fallback}"' in metrics
    detail = await read_only_call(tmp_path)
    failovers = [e for e in detail.timeline if e.kind == "provider.failover"]
    assert len(failovers) == 1, failovers
    data = failovers[0].data
    assert data["from"] == primary and data["to"] == emulators.fallback
    assert data["reason"] in (
        ("stall",) if mode == "silent" else ("lost", "fatal_error", "provider_failed")
    )
    assert data["gap_ms"] > 0
    filler = ("agent", "one moment please") in lines
    if data["gap_ms"] > 1500:  # a gap longer than a second: the offline voice's filler
        assert filler, (data, lines)
    elif data["gap_ms"] < 900:  # (a Gemini drop: its reconnects gave up at once)
        assert not filler, (data, lines)
    costs = next(e.data for e in detail.timeline if e.kind == "call.cost_by_provider")
    assert set(costs) - {"t_ms"} == {primary, emulators.fallback}, costs


async def test_a_provider_that_does_not_connect_is_replaced_at_the_start(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        emulators = Emulators("openai")  # openai refuses every connection; gemini takes over
        await emulators.start(stack)
        assert emulators.openai is not None and emulators.gemini is not None
        emulators.openai.refuse_connections = True
        emulators.gemini.live.turns = [ScriptedTurn.from_obj(FIRST)]
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = emulators.env | twilio_env(twilio, "openai")
        book = agent_book(fallback=["gemini"], tools=[], voice="coral")
        async with running_app(tmp_path, env, agents=book, provider_options=FAST) as (base, *_):
            pcm = caller_pcm(FIRST["caller"], gap_ms=4000)
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            said = await until_said(
                tmp_path,
                lambda lines: any(_plain(t) == "we are open nine to five" for _, t in lines),
                limit_s=30 * UNIT,
            )
            await twilio.wait_calls(timeout_s=40 * UNIT)
    assert (said[0][0], _plain(said[0][1])) == ("agent", "hello thanks for calling")
    assert emulators.gemini.live.histories[0] == []  # nothing had been said yet
    assert '"voiceName": "Kore"' in json.dumps(emulators.gemini.live.setups[0])  # coral's nearest
    detail = await read_only_call(tmp_path)
    (failover,) = [e.data for e in detail.timeline if e.kind == "provider.failover"]
    assert failover["from"] == "openai" and failover["to"] == "gemini"
    assert failover["reason"] == "connect_failed"
    assert failover["gap_ms"] < 2000 * UNIT  # the caller heard no more than ~2 s of silence


async def test_a_failing_provider_is_skipped_by_new_calls_once_its_breaker_opens(
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        emulators = Emulators("openai")
        await emulators.start(stack)
        assert emulators.openai is not None
        emulators.openai.refuse_connections = True
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = emulators.env | twilio_env(twilio, "openai")
        book = agent_book(fallback=["gemini"], tools=[])
        async with (
            running_app(tmp_path, env, agents=book) as (base, *_),
            httpx.AsyncClient(base_url=base, headers=AUTH) as http,
        ):
            for _ in range(4):  # three failures open openai's breaker (3 in 60 s)
                pcm = caller_pcm(FIRST["caller"], gap_ms=1500)
                twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
                await twilio.wait_calls(timeout_s=40 * UNIT)
            health = {p["name"]: p["health"] for p in (await http.get("/v1/providers")).json()}
        store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
        try:
            page = await store.list_calls()
            details = [await store.get_call(c.id) for c in page.items]
        finally:
            await store.aclose()
    assert health["openai"]["state"] == "open"
    assert health["openai"]["last_failure"] == "connect_failed"
    assert health["gemini"]["state"] == "closed"
    served = sorted(d.record.providers for d in details if d is not None)
    # the first three moved to gemini at the start; the 4th started on it (openai skipped)
    assert served == [("gemini",), ("openai", "gemini"), ("openai", "gemini"), ("openai", "gemini")]
    for detail in details:
        assert detail is not None
        assert detail.record.provider == "gemini"  # the provider that ended each call
        moved = [e for e in detail.timeline if e.kind == "provider.failover"]
        assert len(moved) == len(detail.record.providers) - 1


@pytest.mark.parametrize(("primary", "mode"), [("openai", "drop"), ("gemini", "silent")])
async def test_failover_mid_call_on_telnyx(tmp_path: Path, primary: str, mode: str) -> None:
    """The same move on a Telnyx call: its media (L16/PCMU over Telnyx's stream) and Call
    Control are the carrier's, the failover the bridge's: the caller keeps hearing an agent."""
    async with AsyncExitStack() as stack:
        emulators = Emulators(primary)
        await emulators.start(stack)
        telnyx = await stack.enter_async_context(TelnyxEmulator(realtime=True, tail_ms=2000))
        env = emulators.env | telnyx_env(telnyx, primary)
        book = agent_book(
            fallback=[emulators.fallback],
            tools=[],
            limits={"max_call_seconds": 60, "silence_timeout_s": 30, "silence_hangup_s": 50},
        )
        async with running_app(tmp_path, env, agents=book, provider_options=FAST) as (base, *_):
            call = await telnyx.place_inbound_call(
                to="+15550100000",
                from_="+15550111111",
                audio=caller_wav(FIRST["caller"], SECOND["caller"], gap_ms=[9000, 9000]),
                webhook_url=f"{base}/telnyx/webhook",
            )
            await until_said(
                tmp_path,
                lambda lines: any(
                    role == "agent" and _plain(text) == "we are open nine to five"
                    for role, text in lines
                ),
                limit_s=20 * UNIT,
            )
            await emulators.fail(mode)
            said = await until_said(
                tmp_path,
                lambda lines: any(
                    role == "agent" and _plain(text) == "on sunday we are closed"
                    for role, text in lines
                ),
                limit_s=30 * UNIT,
            )
            report = await call.wait(40 * UNIT)
            async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
                record = await ended_call(http)
    assert report.violations == []
    assert emulators.violations() == []
    assert report.commands[:2] == ["answer", "streaming_start"]
    assert "streaming_stop" not in report.commands  # one stream throughout: the call never moved
    given = [(role, _plain(text)) for role, text in emulators.given_history()]
    assert ("user", "what are your opening hours") in given, given
    assert any(r in ("assistant", "model") and t == "we are open nine to five" for r, t in given)
    lines = [(role, _plain(text)) for role, text in said]
    assert lines.index(("agent", "on sunday we are closed")) > lines.index(
        ("agent", "we are open nine to five")
    )
    (failover,) = [e["data"] for e in record["timeline"] if e["kind"] == "provider.failover"]
    assert failover["from"] == primary and failover["to"] == emulators.fallback
    assert failover["reason"] in (
        ("stall",) if mode == "silent" else ("lost", "fatal_error", "provider_failed")
    )
    assert record["carrier"] == "telnyx"
    assert_failover_record(record, primary, emulators.fallback)
    assert any(line["source"] == "telnyx" for line in record["cost"]["lines"])
