"""The local provider in-process: caller audio in, provider events out (tools, barge-in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import anyio
import pytest
from tests.conftest import UNIT
from tests.meaning import slot_of

from switchboard.config import load_settings
from switchboard.errors import ConfigError
from switchboard.media import AudioChunk, AudioFormat, AudioSpec
from switchboard.providers.base import (
    ProviderEvent,
    ProviderEventType,
    SessionConfig,
    SessionState,
)
from switchboard.providers.local import LocalProvider, RuleDialog, create_provider
from switchboard.providers.local.synth import caller_audio
from switchboard.providers.registry import get_provider_registry

pytestmark = [pytest.mark.local, pytest.mark.anyio]

T = ProviderEventType


@cache
def phone(text: str) -> bytes:
    return caller_audio(text)


async def speak(provider: LocalProvider, audio: bytes) -> None:
    for offset in range(0, len(audio), 160):
        await provider.send_audio(AudioChunk(audio[offset : offset + 160], AudioFormat.ULAW, 8000))


async def until(
    events: AsyncIterator[ProviderEvent], seen: list[ProviderEvent], event_type: T, **match: object
) -> ProviderEvent:
    """Collect events into ``seen`` until one of ``event_type`` whose data matches ``match``."""
    with anyio.fail_after(30 * UNIT):
        async for event in events:
            seen.append(event)
            if event.type is event_type and all(event.data.get(k) == v for k, v in match.items()):
                return event
    raise AssertionError(f"events ended before {event_type}")


def phone_config(greeting: str | None = None) -> SessionConfig:
    return SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000, greeting=greeting)


async def test_registry_builds_the_local_provider() -> None:
    registry = get_provider_registry(load_settings())
    provider = registry.create_provider("local", phone_config())
    assert isinstance(provider, LocalProvider)
    assert provider.input_spec == provider.output_spec == phone_config().audio_spec
    assert provider.config.greeting  # the packaged receptionist's
    await provider.disconnect()
    assert provider.state is SessionState.CLOSED


async def test_conversation_with_transfer_and_goodbye() -> None:
    provider = create_provider(phone_config())
    events = provider.receive_events()
    seen: list[ProviderEvent] = []
    await provider.connect()
    await until(events, seen, T.RESPONSE_DONE)  # the greeting
    greeting_audio = [e.data["chunk"] for e in seen if e.type is T.AUDIO_OUTPUT]
    assert greeting_audio and all(
        (c.format, c.sample_rate) == (AudioFormat.ULAW, 8000) for c in greeting_audio
    )

    seen.clear()
    await speak(provider, phone("Please transfer me to the billing department."))
    call = await until(events, seen, T.FUNCTION_CALL)
    assert call.data["name"] == "transfer_call"
    assert call.data["arguments"] == {"destination": "billing"}
    kinds = [e.type for e in seen]
    assert kinds.index(T.SPEECH_STARTED) < kinds.index(T.CALLER_TRANSCRIPT)
    transcript = next(e for e in seen if e.type is T.CALLER_TRANSCRIPT)
    assert transcript.data["final"]
    assert slot_of(transcript.data["text"], "department") == "billing", transcript.data["text"]
    done = await until(events, seen, T.RESPONSE_DONE)
    assert done.data["status"] == "completed"
    assert any(e.type is T.AUDIO_OUTPUT for e in seen)  # "transferring you to billing"
    await provider.handle_function_result(call.data["call_id"], "transferring to billing")
    await until(events, seen, T.RESPONSE_DONE)  # the (silent) continuation after the tool

    seen.clear()
    await speak(provider, phone("Thank you very much, goodbye."))
    bye = await until(events, seen, T.FUNCTION_CALL)
    assert bye.data["name"] == "end_call"
    await provider.disconnect()
    assert provider.state is SessionState.CLOSED


async def test_barge_in_cuts_the_greeting_short() -> None:
    greeting = " ".join(f"This is sentence number {n} of a long greeting." for n in range(1, 13))
    provider = create_provider(phone_config(greeting=greeting))
    events = provider.receive_events()
    seen: list[ProviderEvent] = []
    await provider.connect()
    first = await until(events, seen, T.AUDIO_OUTPUT)
    greeting_id = first.data["response_id"]
    # The caller talks over the agent while the greeting is still being synthesised.
    talker = asyncio.create_task(speak(provider, phone("What are your hours?")))
    await until(events, seen, T.INTERRUPTED, response_id=greeting_id)
    cancelled = await until(events, seen, T.RESPONSE_DONE, response_id=greeting_id)
    assert cancelled.data["status"] == "cancelled"
    await talker
    answer = await until(events, seen, T.TEXT_OUTPUT, final=True)
    assert answer.data["response_id"] != greeting_id
    assert "Monday" in answer.data["text"]
    greeting_text = [
        e.data["text"]
        for e in seen
        if e.type is T.TEXT_OUTPUT and e.data["response_id"] == greeting_id and e.data["final"]
    ]
    assert not any("number 12" in text for text in greeting_text)  # never reached the end
    await provider.disconnect()


async def test_agent_yaml_and_audio_formats_come_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "name: Pizza\ngreeting: Pizza place, hello.\n"
        "intents: [{name: menu, examples: [what is on the menu], reply: Pizza.}]\n",
        encoding="utf-8",
    )
    config = SessionConfig(
        audio_format=AudioFormat.PCM16, sample_rate=24000, extra={"agent_yaml": str(path)}
    )
    provider = create_provider(config)
    assert isinstance(provider.llm, RuleDialog)
    assert provider.llm.agent.name == "Pizza"
    assert provider.config.greeting == "Pizza place, hello."
    assert config.greeting is None  # the caller's config object is not modified
    assert provider.input_spec == AudioSpec(AudioFormat.PCM16, 16000)  # Whisper's rate
    assert provider.output_spec == AudioSpec(AudioFormat.PCM16, 24000)
    await provider.disconnect()
    with pytest.raises(ConfigError):
        create_provider(SessionConfig(extra={"agent_yaml": str(tmp_path / "missing.yaml")}))
