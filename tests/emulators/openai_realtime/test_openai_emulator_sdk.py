"""The official ``openai`` SDK's realtime client against the OpenAI Realtime emulator.

The SDK builds its own URL, headers and client events from typed parameters and parses every
server event itself, so this is the check that the emulator speaks the wire the SDK speaks,
independent of our own client (as ``test_gemini_emulator_sdk_live.py`` is for Gemini).
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from openai import AsyncOpenAI
from openai.types.realtime import (
    RealtimeAudioFormatsParam,
    RealtimeClientEvent,
    RealtimeFunctionToolParam,
    RealtimeServerEvent,
)
from tests.conformance import conform
from tests.conftest import UNIT

from switchboard.audio.g711 import pcm16_to_ulaw
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator

pytestmark = pytest.mark.anyio
KEY = "sk-sdk-driver"
WEATHER: RealtimeFunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def test_official_sdk_session_with_tool_call() -> None:
    script = [
        {
            "caller": "weather in paris",
            "tool": {"name": "get_weather", "arguments": {"city": "Paris"}},
            "say": "It is sunny in Paris.",
        }
    ]
    async with OpenAIRealtimeEmulator(api_key=KEY, script=script) as emu:
        client = AsyncOpenAI(api_key=KEY, base_url=emu.base_url)
        kinds: list[str] = []
        async with (
            asyncio.timeout(20 * UNIT),
            client.realtime.connect(model="gpt-realtime") as conn,
        ):
            pcmu: RealtimeAudioFormatsParam = {"type": "audio/pcmu"}
            await conn.session.update(
                session={
                    "type": "realtime",
                    "instructions": "Be brief.",
                    "audio": {
                        "input": {"format": pcmu, "transcription": {"model": "whisper-1"}},
                        "output": {"format": pcmu, "voice": "marin"},
                    },
                    "tools": [WEATHER],
                }
            )
            speech = pcm16_to_ulaw(speech_like_pcm16("weather in paris", 8000) + bytes(8000 * 2))
            for start in range(0, len(speech), 160):  # 20 ms frames
                chunk = base64.b64encode(speech[start : start + 160]).decode()
                await conn.input_audio_buffer.append(audio=chunk)
            audio_bytes = 0
            transcript = ""
            async for event in conn:
                kinds.append(event.type)
                match event.type:
                    case "session.updated":
                        assert event.session.type == "realtime"
                        assert event.session.audio and event.session.audio.output
                        assert event.session.audio.output.voice == "marin"
                    case "conversation.item.input_audio_transcription.completed":
                        assert event.transcript == "weather in paris"
                    case "response.function_call_arguments.done":
                        assert (event.name, json.loads(event.arguments)) == (
                            "get_weather",
                            {"city": "Paris"},
                        )
                        output = json.dumps({"sky": "clear"})
                        await conn.conversation.item.create(
                            item={
                                "type": "function_call_output",
                                "call_id": event.call_id,
                                "output": output,
                            }
                        )
                        await conn.response.create()
                    case "response.output_audio.delta":
                        audio_bytes += len(base64.b64decode(event.delta))
                    case "response.output_audio_transcript.done":
                        transcript = event.transcript
                    case "response.done" if transcript:
                        assert event.response.status == "completed"
                        break
        # μ-law 8 kHz at the emulator's 60 ms a character: 8 bytes a millisecond
        assert audio_bytes == len("It is sunny in Paris.") * 60 * 8
        assert transcript == "It is sunny in Paris."
        assert kinds[0] == "session.created"
        assert kinds.count("response.done") == 2  # the tool call, then the spoken answer
    # what the SDK sent and what the emulator answered both conform strictly
    assert [e["type"] for e in emu.received][:2] == ["session.update", "input_audio_buffer.append"]
    for sent in emu.received:
        conform(RealtimeClientEvent, sent)
    for answered in emu.sent:
        conform(RealtimeServerEvent, answered)
    assert emu.violations == []
