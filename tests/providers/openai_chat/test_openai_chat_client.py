"""OpenAIChatLLM against the Chat Completions emulator over loopback; requests and answers
checked strictly against the OpenAI SDK's types (openai.types.chat)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from pydantic import TypeAdapter
from tests.conformance import conform

from switchboard.config import load_settings
from switchboard.emulators.common import Script
from switchboard.emulators.openai_chat import ChatCore, OpenAIChatEmulator
from switchboard.errors import ConfigError, ProviderError, RemoteProtocolError
from switchboard.providers.openai_chat import OpenAIChatLLM, json_request, parse_completion

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "met": {"type": "boolean"}},
    "required": ["summary", "met"],
}


def strict_request(raw: dict[str, Any]) -> None:
    """Valid as the SDK's request type, and no key it does not declare (a TypedDict drops
    unknown keys when it validates, so any difference is one)."""
    validated = TypeAdapter(CompletionCreateParamsNonStreaming).validate_python(raw)
    assert _plain(validated) == raw


def _plain(value: Any) -> Any:
    """``Iterable`` fields validate to lazy iterators: walk them into lists to compare."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    return [_plain(item) for item in value]


def test_the_request_is_what_the_sdk_declares() -> None:
    body = json_request(model="gpt-4o-mini", system_prompt="s", prompt="p", schema=SCHEMA)
    strict_request(body)
    assert body["response_format"]["json_schema"]["strict"] is False
    with pytest.raises(AssertionError):
        strict_request({**body, "temprature": 0.1})  # the check catches a misspelt key


async def test_a_structured_answer_round_trips_through_the_emulator() -> None:
    answer = json.dumps({"summary": "Booked for Tuesday.", "met": True})
    async with OpenAIChatEmulator(script=[answer], api_key="sk-test") as emu:
        settings = load_settings(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=emu.base_url)
        llm = OpenAIChatLLM(settings=settings, model="gpt-4o-mini")
        try:
            text, usage = await llm.generate_json(system_prompt="s", prompt="p", schema=SCHEMA)
        finally:
            await llm.aclose()
    assert json.loads(text) == {"summary": "Booked for Tuesday.", "met": True}
    assert usage.input_text_tokens > 0 and usage.output_text_tokens > 0
    [request] = emu.requests
    strict_request(request)
    assert emu.violations == []


async def test_without_a_scripted_json_answer_the_schema_is_filled() -> None:
    async with OpenAIChatEmulator(api_key="sk-test") as emu:
        settings = load_settings(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=emu.base_url)
        llm = OpenAIChatLLM(settings=settings)
        try:
            text, _ = await llm.generate_json(system_prompt="s", prompt="p", schema=SCHEMA)
        finally:
            await llm.aclose()
    assert set(json.loads(text)) == {"summary", "met"}


def test_emulator_answers_are_sdk_chat_completions() -> None:
    core = ChatCore(script=Script.from_obj(['{"summary": "x", "met": false}']))
    body = json_request(model="gpt-4.1-mini", system_prompt="s", prompt="p", schema=SCHEMA)
    reply = core.handle(authorization="Bearer k", raw=json.dumps(body).encode())
    assert reply.status == 200
    completion = conform(ChatCompletion, reply.body)
    assert completion.choices[0].message.content == '{"summary": "x", "met": false}'
    text, usage = parse_completion(json.dumps(reply.body).encode())
    assert text == completion.choices[0].message.content
    assert usage.output_text_tokens == reply.body["usage"]["completion_tokens"]


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"model": "gpt-realtime"}, 404, "not a chat model"),
        ({"model": "gpt-9-turbo"}, 404, "does not exist"),
        ({"temprature": 0.1}, 400, "Unrecognized request argument supplied: temprature"),
        ({"messages": []}, 400, "too short"),
        ({"messages": [{"role": "robot", "content": "x"}]}, 400, "role"),
        ({"stream": True}, 400, "stream"),
    ],
)
def test_the_emulator_refuses_what_the_service_refuses(
    change: dict[str, Any], status: int, message: str
) -> None:
    core = ChatCore(script=Script.from_obj([]))
    body = {**json_request(model="gpt-4o-mini", system_prompt="s", prompt="p", schema=SCHEMA)}
    body.update(change)
    reply = core.handle(authorization="Bearer k", raw=json.dumps(body).encode())
    assert reply.status == status
    assert message in reply.body["error"]["message"]
    assert core.requests == []


def test_strict_schemas_must_close_every_object() -> None:
    core = ChatCore(script=Script.from_obj([]))
    body = json_request(model="gpt-4o-mini", system_prompt="s", prompt="p", schema=SCHEMA)
    body["response_format"]["json_schema"]["strict"] = True
    reply = core.handle(authorization="Bearer k", raw=json.dumps(body).encode())
    assert reply.status == 400 and "additionalProperties" in reply.body["error"]["message"]
    closed = {**SCHEMA, "additionalProperties": False}
    body["response_format"]["json_schema"]["schema"] = closed
    assert core.handle(authorization="Bearer k", raw=json.dumps(body).encode()).status == 200


async def test_errors_carry_openais_message_and_never_the_key() -> None:
    async with OpenAIChatEmulator(api_key="sk-right") as emu:
        settings = load_settings(OPENAI_API_KEY="sk-wrong-key", OPENAI_BASE_URL=emu.base_url)
        llm = OpenAIChatLLM(settings=settings)
        try:
            with pytest.raises(ProviderError, match="HTTP 401: Incorrect API key") as caught:
                await llm.generate_json(system_prompt="s", prompt="p", schema=SCHEMA)
        finally:
            await llm.aclose()
    assert "sk-wrong-key" not in str(caught.value)
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIChatLLM(settings=load_settings(OPENAI_API_KEY=""))


def test_refusals_truncations_and_garbage_are_errors() -> None:
    def completion(message: dict[str, Any], finish: str = "stop") -> bytes:
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        return json.dumps({"choices": [choice], "usage": {}}).encode()

    with pytest.raises(ProviderError, match="refused"):
        parse_completion(completion({"role": "assistant", "content": None, "refusal": "No."}))
    with pytest.raises(ProviderError, match="length"):
        parse_completion(completion({"role": "assistant", "content": "{"}, finish="length"))
    with pytest.raises(RemoteProtocolError):
        parse_completion(b'{"choices": []}')
    with pytest.raises(RemoteProtocolError):
        parse_completion(b"[" * 5000)
