"""The seed document's usage examples, run as literally as Python allows.

The document switchboard was built from shows four blocks: creating providers, creating
telephony adapters, automatic provider selection and session management. Each test below holds
one block as the document writes it, with ``app.`` → ``switchboard.``. Deviations are marked
``# seed:`` and are only these:

* the blocks run inside ``async def`` (a module cannot ``await`` at top level);
* names the document uses without defining them are defined by the test: ``AudioChunk`` is
  imported, ``audio_bytes`` is a spoken question, ``execute_function`` answers ``get_weather``,
  ``provider`` comes from the creation block;
* ``model_id`` is the OpenAI model the document names when the session block runs against
  OpenAI, and the provider's own model against Gemini and Deepgram;
* the document's ``async for`` never ends; here it stops at the ``response.done`` that follows
  agent audio heard after the tool result. Lines marked ``# test:`` only record what happened.

As in the document, the registry comes from ``get_provider_registry()`` and the environment;
here the environment points at the emulators.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

import switchboard.providers.registry as registry_module
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.deepgram import DeepgramEmulator
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.errors import ConfigError, InvalidStateTransition
from switchboard.providers.base import (
    AudioChunk,
    AudioFormat,
    BaseProvider,
    SessionConfig,
    SessionState,
    TelephonyAdapter,
)
from switchboard.providers.registry import ProviderType, get_provider_registry
from tests.conftest import UNIT

pytestmark = pytest.mark.anyio

QUESTION = "What's the weather in Paris?"
ANSWER = "It is sunny and twenty one degrees in Paris."
SCRIPT: list[dict[str, Any]] = [
    {
        "caller": QUESTION,
        "tool": {"name": "get_weather", "arguments": {"location": "Paris"}},
        "say": ANSWER,
    }
]
#: The seed's session block names an OpenAI model; the other providers get their own.
MODEL_ID = {
    ProviderType.OPENAI: "gpt-4o-mini-realtime-preview-2024-12-17",
    ProviderType.GEMINI: None,  # the catalogue's default Live model
    ProviderType.DEEPGRAM: "nova-2",
}
_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "DEEPGRAM_API_KEY",
    "DEEPGRAM_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_BASE_URL",
    "TELNYX_API_KEY",
    "TELNYX_PUBLIC_KEY",
    "TELNYX_BASE_URL",
    "SWITCHBOARD_PROVIDER",
)


class Environment:
    """The process environment the document's ``get_provider_registry()`` reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def set(self, env: dict[str, str]) -> None:
        """Set ``env`` and forget the process-wide registry, so the next call reads it."""
        for key, value in env.items():
            self._monkeypatch.setenv(key, value)
        self._monkeypatch.setattr(registry_module, "_default_registry", None)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Environment:
    for key in _ENV:
        monkeypatch.delenv(key, raising=False)
    env = Environment(monkeypatch)
    env.set({})
    return env


@asynccontextmanager
async def emulated(provider: ProviderType) -> AsyncIterator[dict[str, str]]:
    """Start the emulators ``provider`` talks to; yield the environment pointing at them."""
    async with AsyncExitStack() as stack:
        match provider:
            case ProviderType.OPENAI:
                oai = await stack.enter_async_context(OpenAIRealtimeEmulator(script=SCRIPT))
                yield {"OPENAI_API_KEY": "sk-seed", "OPENAI_BASE_URL": oai.base_url}
                assert oai.violations == []
            case ProviderType.GEMINI:
                gem = await stack.enter_async_context(GeminiEmulator(script=SCRIPT, realtime=False))
                yield {"GEMINI_API_KEY": "g-seed", "GEMINI_BASE_URL": gem.base_url}
                assert gem.live.violations == []
            case ProviderType.DEEPGRAM:
                dg = await stack.enter_async_context(DeepgramEmulator(script=SCRIPT))
                gem = await stack.enter_async_context(GeminiEmulator(script=SCRIPT))
                yield {
                    "DEEPGRAM_API_KEY": "dg-seed",
                    "DEEPGRAM_BASE_URL": dg.base_url,
                    "GEMINI_API_KEY": "g-seed",
                    "GEMINI_BASE_URL": gem.base_url,
                }
                assert dg.violations == [] and gem.rest.violations == []
            case _:
                raise AssertionError(provider)


@dataclass
class Heard:
    """What the session block saw (recorded by its ``# test:`` lines)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    audio_before_result: list[bytes] = field(default_factory=list)
    audio_after_result: list[bytes] = field(default_factory=list)
    chunks_match: bool = True

    def record_audio(self, audio: bytes, chunk: AudioChunk, *, after_result: bool) -> None:
        """Agent audio read as ``data["audio"]`` (the same bytes as ``data["chunk"]``)."""
        self.chunks_match &= isinstance(audio, bytes) and audio == chunk.data
        (self.audio_after_result if after_result else self.audio_before_result).append(audio)


def caller_question(rate: int) -> bytes:
    """The caller's spoken question then 1.5 s of silence (the end of the caller's turn)."""
    return speech_like_pcm16(QUESTION, rate) + bytes(rate * 3)


# -- the document's blocks ------------------------------------------------------------------------
async def test_creating_a_provider_instance(environment: Environment) -> None:
    environment.set({"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g", "DEEPGRAM_API_KEY": "d"})

    from switchboard.providers.registry import ProviderType, get_provider_registry

    # Get registry
    registry = get_provider_registry()

    # Create OpenAI provider
    openai_provider = registry.create_provider(ProviderType.OPENAI)

    # Create Gemini provider
    gemini_provider = registry.create_provider(ProviderType.GEMINI)

    # Create Deepgram segmented pipeline
    deepgram_provider = registry.create_provider(ProviderType.DEEPGRAM)

    for provider in (openai_provider, gemini_provider, deepgram_provider):
        assert isinstance(provider, BaseProvider)
        assert provider.state is SessionState.DISCONNECTED
        with pytest.raises(ConfigError, match=r"connect\(config\)"):
            provider.config  # noqa: B018 -- nothing configured yet: the config goes to connect
        await provider.disconnect()


async def test_creating_a_telephony_adapter(environment: Environment) -> None:
    async with TwilioEmulator() as twilio_emu, TelnyxEmulator() as telnyx_emu:
        environment.set(
            {
                "TWILIO_ACCOUNT_SID": twilio_emu.account_sid,
                "TWILIO_AUTH_TOKEN": twilio_emu.auth_token,
                "TWILIO_BASE_URL": twilio_emu.base_url,
                "TELNYX_API_KEY": telnyx_emu.api_key,
                "TELNYX_PUBLIC_KEY": telnyx_emu.public_key_b64,
                "TELNYX_BASE_URL": telnyx_emu.base_url,
            }
        )

        from switchboard.providers.registry import TelephonyType, get_provider_registry

        registry = get_provider_registry()

        # Create Twilio adapter
        twilio = registry.create_telephony_adapter(TelephonyType.TWILIO)

        # Create Telnyx adapter
        telnyx = registry.create_telephony_adapter(TelephonyType.TELNYX)

        for adapter, name in ((twilio, "twilio"), (telnyx, "telnyx")):
            assert isinstance(adapter, TelephonyAdapter)
            assert adapter.name == name
            await adapter.setup()  # the credentials from the environment are there
            await adapter.aclose()


async def test_automatic_provider_selection(environment: Environment) -> None:
    environment.set({"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g", "DEEPGRAM_API_KEY": "d"})

    from switchboard.providers.registry import get_provider_registry

    registry = get_provider_registry()

    # Select best provider based on requirements
    best_provider_type = registry.select_best_provider(
        {
            "realtime": True,
            "multimodal": True,
            "function_calling": True,
            "cost_preference": "standard",
        }
    )

    # Returns ProviderType.GEMINI (multimodal + realtime + standard cost)
    assert best_provider_type is ProviderType.GEMINI


@pytest.mark.parametrize(
    "provider_type", [ProviderType.OPENAI, ProviderType.GEMINI, ProviderType.DEEPGRAM]
)
async def test_session_management(environment: Environment, provider_type: ProviderType) -> None:
    async with emulated(provider_type) as env:
        environment.set(env)
        provider = get_provider_registry().create_provider(provider_type)  # seed: creation block
        heard = Heard()
        with anyio.fail_after(30 * UNIT):
            await session_management_block(provider, MODEL_ID[provider_type], heard)

    assert provider.state is SessionState.CLOSED
    assert heard.calls == [("get_weather", {"location": "Paris"})]
    assert heard.chunks_match
    spoken = b"".join(heard.audio_after_result)
    assert provider.output_spec.duration_ms(len(spoken)) > 1000  # the answer, spoken
    assert ANSWER in heard.texts, heard.texts


async def session_management_block(
    provider: BaseProvider, model_id: str | None, heard: Heard
) -> None:
    """The document's "Session Management" block."""
    audio_bytes = caller_question(16000)  # seed: the document leaves audio_bytes to the reader
    results: list[Any] = []  # test:

    def execute_function(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        heard.calls.append((name, arguments))  # test:
        results.append(name)  # test:
        return {"location": arguments["location"], "forecast": "sunny", "temp_c": 21}

    # seed: the document uses AudioChunk without importing it
    from switchboard.providers.base import AudioChunk, AudioFormat, SessionConfig

    # Configure session
    config = SessionConfig(
        model_id=model_id,  # seed: "gpt-4o-mini-realtime-preview-2024-12-17"
        audio_format=AudioFormat.PCM16,
        sample_rate=16000,
        system_prompt="You are a helpful voice assistant.",
        temperature=0.7,
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Get weather information",
                    "parameters": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                },
            }
        ],
    )

    # Connect provider
    await provider.connect(config)

    # Send audio
    audio_chunk = AudioChunk(data=audio_bytes, format=AudioFormat.PCM16, sample_rate=16000)
    await provider.send_audio(audio_chunk)

    # Receive events
    async for event in provider.receive_events():
        if event.type == "audio.output":
            # Handle audio output
            audio_data = event.data["audio"]
            heard.record_audio(audio_data, event.data["chunk"], after_result=bool(results))  # test:
        elif event.type == "text.output":
            # Handle text output
            text = event.data["text"]
            heard.texts.append(text)  # test:
        elif event.type == "function_call":
            # Handle function call
            call_id = event.data["call_id"]
            name = event.data["name"]
            arguments = event.data["arguments"]

            # Execute function and return result
            result = execute_function(name, arguments)
            await provider.handle_function_result(call_id, result)
        elif event.type == "response.done" and heard.audio_after_result:  # seed: loop never ends
            break

    # Disconnect
    await provider.disconnect()


# -- both forms of configuration ------------------------------------------------------------------
async def test_config_given_to_connect_replaces_the_one_given_at_creation(
    environment: Environment,
) -> None:
    async with OpenAIRealtimeEmulator(script=[]) as emu:
        environment.set({"OPENAI_API_KEY": "sk-seed", "OPENAI_BASE_URL": emu.base_url})
        registry = get_provider_registry()
        provider = registry.create_provider(
            ProviderType.OPENAI, SessionConfig(system_prompt="first", model_id="gpt-realtime")
        )
        second = SessionConfig(
            system_prompt="second", audio_format=AudioFormat.ULAW, sample_rate=8000
        )
        await provider.connect(second)
        try:
            assert provider.config is second
            assert second.model_id == "gpt-4o-mini-realtime-preview-2024-12-17"  # catalogue default
            assert second.voice is not None
            assert provider.input_spec.format is AudioFormat.ULAW
            with pytest.raises(InvalidStateTransition):
                await provider.connect(SessionConfig())  # one session per provider object
        finally:
            await provider.disconnect()
    updates = [e["session"] for e in emu.received if e["type"] == "session.update"]
    assert [u["instructions"] for u in updates] == ["second"]
    assert {u["model"] for u in updates} == {"gpt-4o-mini-realtime-preview-2024-12-17"}
    assert emu.violations == []


async def test_deepgram_parts_follow_the_config_given_to_connect(environment: Environment) -> None:
    async with emulated(ProviderType.DEEPGRAM) as env:
        environment.set(env)
        provider = get_provider_registry().create_provider(ProviderType.DEEPGRAM, SessionConfig())
        assert provider.input_spec.format is AudioFormat.PCM16
        await provider.connect(SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000))
        try:
            assert provider.input_spec == provider.output_spec
            assert (provider.input_spec.format, provider.input_spec.sample_rate) == (
                AudioFormat.ULAW,
                8000,
            )
        finally:
            await provider.disconnect()


@pytest.mark.parametrize("provider_type", list(ProviderType))
async def test_no_config_anywhere_is_a_clear_error(
    environment: Environment, provider_type: ProviderType
) -> None:
    environment.set({"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g", "DEEPGRAM_API_KEY": "d"})
    provider = get_provider_registry().create_provider(provider_type)
    with pytest.raises(ConfigError, match=r"needs a SessionConfig"):
        await provider.connect()
    assert provider.state is SessionState.DISCONNECTED  # nothing was opened
    await provider.disconnect()
    with pytest.raises(InvalidStateTransition):
        await provider.connect(SessionConfig())


@pytest.mark.local
async def test_local_provider_takes_its_config_at_connect(environment: Environment) -> None:
    provider = get_provider_registry().create_provider(ProviderType.LOCAL)
    events = provider.receive_events()
    await provider.connect(SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000))
    try:
        assert provider.config.greeting  # the packaged receptionist's
        assert provider.output_spec.format is AudioFormat.ULAW
        with anyio.fail_after(60 * UNIT):
            async for event in events:  # the greeting, spoken in the configured format
                if event.type == "audio.output":
                    assert event.data["chunk"].format is AudioFormat.ULAW
                    assert event.data["audio"]
                if event.type == "response.done":
                    break
    finally:
        await provider.disconnect()
