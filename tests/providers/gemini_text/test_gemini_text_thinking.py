"""The text client with thinking models (gemini-2.5-pro): thoughts unspoken, signatures returned."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from google.genai import types
from tests.conformance import conform

from switchboard.config import load_settings
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.errors import ProviderError
from switchboard.providers.gemini_text import GeminiTextLLM, StreamDecoder, request_body
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
)

TOOLS = [
    {
        "type": "function",
        "name": "lookup",
        "description": "Look something up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
]


def sse(*chunks: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks)


def test_decoder_keeps_thoughts_out_of_the_spoken_text() -> None:
    """Shapes from ai.google.dev/gemini-api/docs/thinking and …/thought-signatures."""
    summary = "**Weighing the options**\nThe caller wants hours."
    thought: dict[str, Any] = {"text": summary, "thought": True}
    chunks: list[dict[str, Any]] = [
        {"candidates": [{"content": {"role": "model", "parts": [thought]}, "index": 0}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "We open "}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "at nine.", "thoughtSignature": "c2lnLXRleHQ="}],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 9,
                "candidatesTokenCount": 4,
                "thoughtsTokenCount": 120,
                "totalTokenCount": 133,
            },
        },
    ]
    for chunk in chunks:
        conform(types.GenerateContentResponse, chunk)  # the shapes the SDK reads
    decoder = StreamDecoder()
    events = decoder.feed(sse(*chunks)) + decoder.finish()
    assert [e.text for e in events if isinstance(e, LLMTextDelta)] == ["We open ", "at nine."]
    assert decoder.thought_chars == len(summary)
    assert events[-1] == LLMDone(input_tokens=9, output_tokens=124, finish_reason="STOP")


def test_a_calls_thought_signature_goes_back_with_it() -> None:
    part = {
        "functionCall": {"id": "c1", "name": "lookup", "args": {"q": "hours"}},
        "thoughtSignature": "c2lnLWNhbGw=",
    }
    decoder = StreamDecoder()
    chunk = {"candidates": [{"content": {"role": "model", "parts": [part]}}]}
    (call,) = [e for e in decoder.feed(sse(chunk)) if isinstance(e, LLMFunctionCall)]
    assert call.signature == "c2lnLWNhbGw="
    history = [
        ChatMessage("user", "hours?"),
        ChatMessage("assistant", tool_calls=(call,)),
        ChatMessage("tool", '{"open": "9-5"}', tool_call_id="c1"),
    ]
    body = request_body(
        system_prompt=None, history=history, tools=TOOLS, thinking_budget=128, include_thoughts=True
    )
    assert body["contents"][1]["parts"] == [part]  # exactly as received
    assert body["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 128, "includeThoughts": True}
    }
    for content in body["contents"]:
        conform(types.Content, content)
    conform(types.GenerationConfig, body["generationConfig"])
    plain = request_body(system_prompt=None, history=history[:1], tools=[])
    assert "generationConfig" not in plain


@pytest.mark.anyio
async def test_gemini_2_5_pro_turn_with_a_tool_against_the_emulator() -> None:
    script = [{"tool": {"name": "lookup", "arguments": {"q": "hours"}}, "say": "Nine to five."}]
    async with GeminiEmulator(script=script) as emu, httpx.AsyncClient() as client:
        settings = load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url)
        llm = GeminiTextLLM(
            settings=settings,
            model="gemini-2.5-pro",
            client=client,
            thinking_budget=128,
            include_thoughts=True,
        )
        history = [ChatMessage("user", "when are you open?")]

        async def turn() -> list[LLMEvent]:
            return [
                e async for e in llm.stream(system_prompt="Be brief.", history=history, tools=TOOLS)
            ]

        first = await turn()
        (call,) = [e for e in first if isinstance(e, LLMFunctionCall)]
        assert call.signature
        history += [
            ChatMessage("assistant", tool_calls=(call,)),
            ChatMessage("tool", '{"open": "9-5"}', tool_call_id=call.call_id),
        ]
        second = await turn()
    spoken = "".join(e.text for e in [*first, *second] if isinstance(e, LLMTextDelta))
    assert spoken == "Nine to five."
    assert emu.rest.thoughts_sent and all(t not in spoken for t in emu.rest.thoughts_sent)
    assert isinstance(second[-1], LLMDone) and second[-1].output_tokens > 0
    assert emu.rest.requests[0]["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 128,
        "includeThoughts": True,
    }
    assert emu.violations == []  # the signature went back with the call


@pytest.mark.anyio
async def test_a_budget_gemini_2_5_pro_refuses_surfaces_googles_message() -> None:
    async with GeminiEmulator(script=["Hi."]) as emu:
        settings = load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url)
        llm = GeminiTextLLM(settings=settings, model="gemini-2.5-pro", thinking_budget=0)
        try:
            with pytest.raises(ProviderError, match="This model only works in thinking mode"):
                async for _ in llm.stream(
                    system_prompt=None, history=[ChatMessage("user", "hi")], tools=[]
                ):
                    pass
        finally:
            await llm.aclose()
