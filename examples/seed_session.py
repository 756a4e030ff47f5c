"""The seed's "Session Management" usage, runnable end to end.

registry → ``create_provider(ProviderType.OPENAI, SessionConfig(...))`` → ``connect`` →
``send_audio`` → ``async for event in provider.receive_events()`` (audio.output, text.output,
function_call → ``handle_function_result``) → ``disconnect``.

Without ``OPENAI_BASE_URL`` in the environment it starts the local OpenAI Realtime emulator
(scripted: the caller asks for the weather, the agent calls ``get_weather`` and answers), so it
runs offline::

    .venv/bin/python examples/seed_session.py

With ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` set it talks to that endpoint instead (the
caller audio is then a speech-like tone, so expect the model to ask you to repeat).
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
from switchboard.providers.base import AudioChunk, ProviderEventType, SessionConfig
from switchboard.providers.registry import ProviderType, get_provider_registry

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
SCRIPT = [
    {
        "caller": "What's the weather in Paris?",
        "tool": {"name": "get_weather", "arguments": {"city": "Paris"}},
        "say": "It is 21 degrees and sunny in Paris.",
    }
]


def get_weather(city: str) -> dict[str, Any]:
    """The example's tool (a real one would call a weather API)."""
    return {"city": city, "temp_c": 21, "sky": "sunny"}


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
        registry = get_provider_registry(settings)
        provider = registry.create_provider(
            ProviderType.OPENAI,
            SessionConfig(
                system_prompt="You are a helpful weather assistant. Be brief.",
                tools=[WEATHER_TOOL],
            ),
        )
        await provider.connect()
        spec = provider.input_spec  # what send_audio expects (PCM16 24 kHz here)
        caller = speech_like_pcm16("What's the weather in Paris?", spec.sample_rate)
        caller += bytes(spec.bytes_for_ms(800))  # then silence: the server VAD ends the turn
        step = spec.bytes_for_ms(20)
        for i in range(0, len(caller), step):
            await provider.send_audio(
                AudioChunk(caller[i : i + step], spec.format, spec.sample_rate)
            )

        audio_ms = 0.0
        async with asyncio.timeout(30):
            async for event in provider.receive_events():
                match event.type:
                    case ProviderEventType.AUDIO_OUTPUT:
                        audio_ms += event.data["chunk"].duration_ms  # play it to the caller
                    case ProviderEventType.TEXT_OUTPUT if event.data["final"]:
                        print(f"agent: {event.data['text']}")
                    case ProviderEventType.CALLER_TRANSCRIPT if event.data["final"]:
                        print(f"caller: {event.data['text']}")
                    case ProviderEventType.FUNCTION_CALL:
                        name, args = event.data["name"], event.data["arguments"]
                        print(f"function call: {name}({args})")
                        result = get_weather(**args) if name == "get_weather" else {}
                        await provider.handle_function_result(event.data["call_id"], result)
                    case ProviderEventType.RESPONSE_DONE:
                        status = event.data["status"]
                        print(f"response done: {status} ({audio_ms:.0f} ms of agent audio)")
                        if status == "completed" and audio_ms > 0:
                            break
                    case ProviderEventType.ERROR:
                        print(f"error: {event.data['code']}: {event.data['message']}")
                        if event.data["fatal"]:
                            break
                    case _:
                        pass
        await provider.disconnect()
        return 0 if audio_ms > 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
