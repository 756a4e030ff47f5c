"""The seed's "Session Management" usage, runnable end to end, in the document's own form.

registry → ``create_provider(ProviderType.OPENAI)`` → ``connect(SessionConfig(...))`` →
``send_audio(AudioChunk(data=..., format=..., sample_rate=...))`` →
``async for event in provider.receive_events()`` (``audio.output`` read as
``event.data["audio"]``, ``text.output``, ``function_call`` → ``handle_function_result``) →
``disconnect``.

Without ``OPENAI_BASE_URL`` in the environment it starts the local OpenAI Realtime emulator
(scripted: the caller asks for the weather, the agent calls ``get_weather`` and answers), so it
runs offline::

    .venv/bin/python examples/seed_session.py

With ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` set it talks to that endpoint instead (the
caller audio is then a speech-like tone, so expect the model to ask you to repeat).

``create_provider(ProviderType.OPENAI, config)`` followed by ``connect()`` works as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from switchboard.config import Settings, load_settings
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.providers.base import AudioChunk, AudioFormat, SessionConfig
from switchboard.providers.registry import ProviderType, get_provider_registry

SCRIPT = [
    {
        "caller": "What's the weather in Paris?",
        "tool": {"name": "get_weather", "arguments": {"location": "Paris"}},
        "say": "It is 21 degrees and sunny in Paris.",
    }
]


def execute_function(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The example's tools (a real ``get_weather`` would call a weather API)."""
    if name == "get_weather":
        return {"location": arguments["location"], "temp_c": 21, "sky": "sunny"}
    return {"error": f"unknown function {name}"}


@contextlib.asynccontextmanager
async def openai_settings() -> AsyncIterator[Settings]:
    """Settings from the environment, or pointing at a freshly started emulator."""
    if os.environ.get("OPENAI_BASE_URL"):
        yield load_settings()
        return
    async with OpenAIRealtimeEmulator(script=SCRIPT) as emu:
        print(f"(no OPENAI_BASE_URL: using the emulator at {emu.base_url})")
        yield load_settings(OPENAI_API_KEY="sk-emulator", OPENAI_BASE_URL=emu.base_url)


async def main() -> int:
    async with openai_settings() as settings:
        # get_provider_registry() alone reads the environment; the settings pick the emulator.
        registry = get_provider_registry(settings)
        provider = registry.create_provider(ProviderType.OPENAI)

        # Configure session
        config = SessionConfig(
            model_id="gpt-4o-mini-realtime-preview-2024-12-17",
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

        # Send audio: the caller's question, then silence (the server VAD ends the turn), in
        # 20 ms chunks as a phone line delivers it; switchboard converts 16 kHz to the wire's rate.
        audio_bytes = speech_like_pcm16("What's the weather in Paris?", 16000) + bytes(25600)
        for i in range(0, len(audio_bytes), 640):
            audio_chunk = AudioChunk(
                data=audio_bytes[i : i + 640], format=AudioFormat.PCM16, sample_rate=16000
            )
            await provider.send_audio(audio_chunk)

        # Receive events
        agent_audio = bytearray()
        answered = False
        answer_bytes = 0  # agent audio after the tool result
        async with asyncio.timeout(30):
            async for event in provider.receive_events():
                if event.type == "audio.output":
                    agent_audio += event.data["audio"]  # play it (in provider.output_spec)
                    answer_bytes += len(event.data["audio"]) if answered else 0
                elif event.type == "text.output" and event.data["final"]:
                    print(f"agent: {event.data['text']}")
                elif event.type == "caller.transcript" and event.data["final"]:
                    print(f"caller: {event.data['text']}")
                elif event.type == "function_call":
                    call_id = event.data["call_id"]
                    name = event.data["name"]
                    arguments = event.data["arguments"]
                    print(f"function call: {name}({arguments})")
                    result = execute_function(name, arguments)
                    await provider.handle_function_result(call_id, result)
                    answered = True
                elif event.type == "response.done" and answer_bytes:
                    break  # the answer that followed the tool result has been spoken
                elif event.type == "error":
                    print(f"error: {event.data['code']}: {event.data['message']}")
                    if event.data["fatal"]:
                        break

        # Disconnect
        await provider.disconnect()
        seconds = provider.output_spec.duration_ms(len(agent_audio)) / 1000
        print(f"{seconds:.1f} s of agent audio")
        return 0 if answer_bytes else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
