"""The Gemini emulator serves each model only where the service does, and thinks like 2.5 Pro."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from google.genai import types
from tests.conformance import conform
from tests.conftest import UNIT
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from switchboard.emulators.gemini import GeminiEmulator
from switchboard.emulators.gemini.models import LIVE_MODELS, TEXT_MODELS

pytestmark = pytest.mark.anyio

PATH = "/ws/google.ai.generativelanguage.{v}.GenerativeService.BidiGenerateContent"
KEY = {"x-goog-api-key": "k"}
BODY: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def setup_reply(emu: GeminiEmulator, model: str, version: str = "v1beta") -> Any:
    """The first server frame after a Live setup for ``model``, or the close it got."""
    url = emu.base_url.replace("http://", "ws://") + PATH.format(v=version)
    async with connect(url, additional_headers=KEY) as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{model}"}}))
        try:
            async with asyncio.timeout(5 * UNIT):
                return json.loads(await ws.recv())
        except ConnectionClosed as exc:
            return exc.rcvd


def chunks_of(resp: httpx.Response) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    return [json.loads(e.removeprefix("data: ")) for e in resp.text.split("\r\n\r\n") if e]


def rest_url(emu: GeminiEmulator, model: str) -> str:
    return f"{emu.base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"


async def test_live_refuses_text_models_at_setup_with_the_services_close() -> None:
    async with GeminiEmulator() as emu:
        for model in sorted(TEXT_MODELS - LIVE_MODELS):
            close = await setup_reply(emu, model)
            assert close.code == 1008, model
            # google/adk-samples#23: the reason is cut at 123 bytes, as a close frame must be
            assert close.reason.startswith(
                f"models/{model} is not found for API version v1beta, or is not supported "
                "for bidiGenerateContent. Call ListMod"
            )
        alpha = await setup_reply(emu, "gemini-2.5-pro", version="v1alpha")
        assert "for API version v1alpha" in alpha.reason
        for model in sorted(LIVE_MODELS):
            assert await setup_reply(emu, model) == {"setupComplete": {}}, model
    assert emu.live.close_codes == [1008] * (len(TEXT_MODELS - LIVE_MODELS) + 1)


async def test_narrowing_models_cannot_make_live_serve_a_text_model() -> None:
    async with GeminiEmulator(models={"gemini-2.5-pro", "gemini-live-2.5-flash-preview"}) as emu:
        assert (await setup_reply(emu, "gemini-2.5-pro")).code == 1008
        assert (await setup_reply(emu, "gemini-2.0-flash-live-001")).code == 1008  # not this key's
        assert await setup_reply(emu, "gemini-live-2.5-flash-preview") == {"setupComplete": {}}


async def test_rest_refuses_live_models_and_serves_gemini_2_5_pro() -> None:
    async with GeminiEmulator(script=["Hello there."]) as emu, httpx.AsyncClient() as client:
        refused = await client.post(
            rest_url(emu, "gemini-2.5-flash-native-audio-preview-12-2025"), json=BODY, headers=KEY
        )
        served = await client.post(rest_url(emu, "gemini-2.5-pro"), json=BODY, headers=KEY)
    assert refused.status_code == 404
    error = refused.json()["error"]
    assert error["status"] == "NOT_FOUND"
    assert "is not supported for generateContent" in error["message"]
    chunks = chunks_of(served)
    text = "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "Hello there."
    assert chunks[-1]["usageMetadata"]["thoughtsTokenCount"] > 0  # 2.5 Pro always thinks
    for chunk in chunks:
        conform(types.GenerateContentResponse, chunk)


@pytest.mark.parametrize(
    ("model", "budget", "error"),
    [
        ("gemini-2.5-pro", 0, "Budget 0 is invalid. This model only works in thinking mode."),
        ("gemini-2.5-pro", 64, "Please choose a value between 128 and 32768"),
        ("gemini-2.5-pro", 128, None),
        ("gemini-2.5-pro", -1, None),
        ("gemini-2.5-flash", 0, None),
        ("gemini-2.5-flash", 30000, "Please choose a value between 1 and 24576"),
    ],
)
async def test_thinking_budgets_the_models_refuse(
    model: str, budget: int, error: str | None
) -> None:
    body = {**BODY, "generationConfig": {"thinkingConfig": {"thinkingBudget": budget}}}
    async with GeminiEmulator(script=["Fine."]) as emu, httpx.AsyncClient() as client:
        resp = await client.post(rest_url(emu, model), json=body, headers=KEY)
    if error is None:
        assert resp.status_code == 200
    else:
        assert resp.status_code == 400
        assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert error in resp.json()["error"]["message"]


async def test_thought_summaries_and_signatures_of_a_thinking_model() -> None:
    script = [{"tool": {"name": "lookup", "arguments": {"q": "hours"}}, "say": "Nine to five."}]
    tools = [{"functionDeclarations": [{"name": "lookup", "description": "d"}]}]
    thinking = {"thinkingConfig": {"thinkingBudget": 128, "includeThoughts": True}}
    first_body = {**BODY, "tools": tools, "generationConfig": thinking}
    async with GeminiEmulator(script=script) as emu, httpx.AsyncClient() as client:
        url = rest_url(emu, "gemini-2.5-pro")
        first = chunks_of(await client.post(url, json=first_body, headers=KEY))
        thought, call = (c["candidates"][0]["content"]["parts"][0] for c in first)
        assert thought["thought"] is True and thought["text"] == emu.rest.thoughts_sent[0]
        assert call["functionCall"]["name"] == "lookup" and call["thoughtSignature"]
        for chunk in first:
            conform(types.GenerateContentResponse, chunk)
        result = {"functionResponse": {"id": "fc_1", "name": "lookup", "response": {"r": 1}}}
        history = [*BODY["contents"], {"role": "model", "parts": [call]}]
        history.append({"role": "user", "parts": [result]})
        echoed = {"contents": history, "tools": tools}
        await client.post(url, json=echoed, headers=KEY)
        assert emu.violations == []
        stripped = [
            *BODY["contents"],
            {"role": "model", "parts": [{"functionCall": call["functionCall"]}]},
        ]
        stripped.append({"role": "user", "parts": [result]})
        await client.post(url, json={"contents": stripped, "tools": tools}, headers=KEY)
    assert emu.violations[0] == "functionCall 'lookup' came back without its thoughtSignature"
