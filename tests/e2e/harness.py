"""Shared pieces of the end-to-end tests: caller audio, agents, the app on a loopback port."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from switchboard.agents import Agent, AgentBook
from switchboard.app import create_app
from switchboard.audio import pcm16_to_ulaw
from switchboard.config import Settings, load_settings
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.loopback import LoopbackServer, bind_loopback
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioCallReport, TwilioEmulator
from switchboard.store import CallDetail, CallStore
from tests.conftest import UNIT
from tests.waiting import eventually_async

API_TOKEN = "e2e-api-token"


def caller_pcm(
    *utterances: str, gap_ms: int | list[int] = 1500, lead_ms: int = 1500, rate: int = 8000
) -> bytes:
    """PCM16 of speech-like utterances separated by silence (what the simulated caller says).

    ``gap_ms`` is the silence after each utterance (one value for all, or one per utterance).
    """
    gaps = gap_ms if isinstance(gap_ms, list) else [gap_ms] * len(utterances)
    pcm = bytearray(bytes(rate * lead_ms // 1000 * 2))
    for text, gap in zip(utterances, gaps, strict=True):
        pcm += speech_like_pcm16(text, rate, ms_per_char=45.0)
        pcm += bytes(rate * gap // 1000 * 2)
    return bytes(pcm)


def caller_wav(
    *utterances: str, gap_ms: int | list[int] = 1500, lead_ms: int = 1500, rate: int = 8000
) -> bytes:
    """:func:`caller_pcm` as a WAV file's bytes."""
    pcm = caller_pcm(*utterances, gap_ms=gap_ms, lead_ms=lead_ms, rate=rate)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def agent_book(**overrides: Any) -> AgentBook:
    fields: dict[str, Any] = {
        "name": "frontdesk",
        "numbers": ["*"],
        "system_prompt": "You are a test agent.",
        "greeting": "Hello, thanks for calling.",
        "tools": ["end_call", "transfer_call"],
        "limits": {"max_call_seconds": 60, "silence_timeout_s": 20, "silence_hangup_s": 40},
        # no failover unless a test asks: a failing provider ends the call, as it used to
        "fallback": [],
    }
    fields.update(overrides)
    return AgentBook([Agent.model_validate(fields)])


def openai_env(oai: OpenAIRealtimeEmulator) -> dict[str, str]:
    """Settings pointing the app at an OpenAI Realtime emulator."""
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": oai.base_url}


def twilio_env(twilio: TwilioEmulator, provider: str | None = None) -> dict[str, str]:
    """Settings pointing the app at a Twilio emulator (and pinning the provider, if given)."""
    env = {
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_BASE_URL": twilio.base_url,
    }
    return env | ({"SWITCHBOARD_PROVIDER": provider} if provider else {})


def telnyx_env(telnyx: TelnyxEmulator, provider: str | None = None) -> dict[str, str]:
    """Settings pointing the app at a Telnyx emulator (and pinning the provider, if given)."""
    env = {
        "TELNYX_API_KEY": telnyx.api_key,
        "TELNYX_PUBLIC_KEY": telnyx.public_key_b64,
        "TELNYX_BASE_URL": telnyx.base_url,
    }
    return env | ({"SWITCHBOARD_PROVIDER": provider} if provider else {})


@asynccontextmanager
async def openai_twilio_app(
    tmp_path: Path,
    script: list[dict[str, Any]],
    *,
    agents: AgentBook | None = None,
    openai_key: str = "sk-test",
    twilio_token: str | None = None,
    **emulator_options: Any,
) -> AsyncIterator[tuple[OpenAIRealtimeEmulator, TwilioEmulator, str]]:
    """The app between an OpenAI Realtime emulator speaking ``script`` (30 ms a character) and
    a Twilio emulator, pinned to the ``openai`` provider: yields (oai, twilio, base URL)."""
    emulator_options.setdefault("ms_per_char", 30.0)
    twilio_options: dict[str, Any] = {"auth_token": twilio_token} if twilio_token else {}
    async with (
        OpenAIRealtimeEmulator(script=script, **emulator_options) as oai,
        TwilioEmulator(**twilio_options) as twilio,
    ):
        env = openai_env(oai) | {"OPENAI_API_KEY": openai_key} | twilio_env(twilio, "openai")
        options: dict[str, Any] = {"provider_options": {"openai": {"backoff_base_s": 0.05}}}
        if agents is not None:
            options["agents"] = agents
        async with running_app(tmp_path, env, **options) as (base, _settings, _app):
            yield oai, twilio, base


async def place_twilio_call(
    twilio: TwilioEmulator, base: str, pcm: bytes, **options: Any
) -> TwilioCallReport:
    """Dial the app from the Twilio emulator with ``pcm`` (PCM16 8 kHz) as the caller's voice;
    returns the call's report once it has ended."""
    caller = twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm), **options)
    (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
    assert report.call_sid == caller.report.call_sid
    return report


async def read_only_call(tmp_path: Path) -> CallDetail:
    """The one call record the test's database holds."""
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    try:
        await store.migrate()
        page = await store.list_calls()
        assert len(page.items) == 1, page.items
        detail = await store.get_call(page.items[0].id)
        assert detail is not None
        return detail
    finally:
        await store.aclose()


async def until_said(
    tmp_path: Path, said: Callable[[list[tuple[str, str]]], bool], *, limit_s: float = 15.0
) -> list[tuple[str, str]]:
    """Wait until the one call's transcript, as the gateway has written it so far, satisfies
    ``said`` (a test of its ``(role, text)`` lines); returns those lines.

    An agent line is written once its reply has been played to the caller (every mark acked),
    so "the greeting is in the transcript" means the caller has heard it.
    """
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    lines: list[tuple[str, str]] = []

    async def check() -> list[tuple[str, str]] | None:
        nonlocal lines
        page = await store.list_calls()
        detail = await store.get_call(page.items[0].id) if page.items else None
        lines = [(t.role, t.text) for t in detail.transcript] if detail else []
        return lines if said(lines) else None

    try:
        return await eventually_async(check, limit_s=limit_s, every_s=0.05)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the transcript so far: {lines}") from None
    finally:
        await store.aclose()


@asynccontextmanager
async def running_app(
    tmp_path: Path, env: dict[str, str], **manager_options: Any
) -> AsyncIterator[tuple[str, Settings, Any]]:
    """The app under uvicorn on a free loopback port: yields (base URL, settings, app)."""
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        settings = load_settings(
            SWITCHBOARD_PUBLIC_URL=base,
            SWITCHBOARD_API_TOKEN=API_TOKEN,
            SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            **env,
        )
        manager_options.setdefault("agents", agent_book())
        app = create_app(settings, **manager_options)
    except BaseException:
        sock.close()  # the server that would have closed it is not made
        raise
    async with LoopbackServer(app, sock=sock, ws_max_size=settings.ws_max_size):
        yield base, settings, app
        # the caller's side can finish first: let the gateway finalise its records
        assert await app.state.switchboard.calls.wait_idle(10.0 * UNIT), "calls still live"
