"""HTTP tools, per-call variables and ``agent_request_url`` end to end over loopback.

The user's service is a test endpoint (tests/integrations/endpoint.py) that verifies every
request with the ``standardwebhooks`` reference library. A tool call from each provider
emulator reaches it and its answer reaches the model (what each emulator received is read
back); ``POST /v1/calls`` variables are heard in the greeting; ``agent_request_url`` chooses
the agent and variables of an inbound call, and when it fails the call is routed by the agent
book with the reason on its timeline.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.agents import Agent, AgentBook
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    agent_book,
    caller_pcm,
    openai_env,
    place_twilio_call,
    read_only_call,
    running_app,
    twilio_env,
    until_said,
)
from tests.e2e.test_pairs import Providers, provider_env
from tests.integrations.endpoint import SECRET, Answer, Endpoint

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ANSWER = {"status": "shipped", "eta": "tomorrow"}
TOOL_SCRIPT: list[dict[str, Any]] = [
    {
        "caller": "where is my order",
        "tool": {"name": "lookup_order", "arguments": {"order_id": "A1234"}},
        "say": "It ships tomorrow.",
    },
    {"caller": "thanks bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"},
]
BYE_SCRIPT: list[dict[str, Any]] = [TOOL_SCRIPT[1]]


def lookup_tool(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": "lookup_order",
        "description": "Find an order by its number",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        "http": {"url": endpoint.url("/voice/lookup"), "timeout_s": 5 * UNIT},
    }


def function_outputs(provider: str, providers: Providers) -> list[Any]:
    """Every function output the provider emulator was given, in order."""
    if provider == "openai":
        assert providers.openai is not None
        return [
            json.loads(event["item"]["output"])
            for event in providers.openai.received
            if event.get("type") == "conversation.item.create"
            and event["item"].get("type") == "function_call_output"
        ]
    assert providers.gemini is not None
    if provider == "gemini":
        return [
            response["response"]
            for message in providers.gemini.live.received
            for response in message.get("toolResponse", {}).get("functionResponses", [])
        ]
    seen: list[Any] = []  # each request to the text LLM carries the whole history
    for request in providers.gemini.rest.requests:
        for content in request.get("contents", []):
            for part in content.get("parts", []):
                response = part.get("functionResponse", {}).get("response")
                if response is not None and response not in seen:
                    seen.append(response)
    return seen


@pytest.mark.parametrize("provider", ["openai", "gemini", "deepgram"])
async def test_an_http_tool_call_reaches_the_service_and_its_answer_the_model(
    tmp_path: Path, provider: str
) -> None:
    async with AsyncExitStack() as stack:
        endpoint = await stack.enter_async_context(Endpoint(answer=lambda _s: Answer(200, ANSWER)))
        providers = await stack.enter_async_context(provider_env(provider, stack, TOOL_SCRIPT))
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = providers.env | twilio_env(twilio, provider) | {"SWITCHBOARD_WEBHOOK_SECRET": SECRET}
        agents = agent_book(tools=["end_call", lookup_tool(endpoint)])
        async with running_app(tmp_path, env, agents=agents) as (base, _settings, _app):
            pcm = caller_pcm("where is my order", "thanks bye", gap_ms=[3000, 5000])
            report = await place_twilio_call(twilio, base, pcm)
        outputs = function_outputs(provider, providers)
    assert report.violations == []
    assert endpoint.unverified == []
    detail = await read_only_call(tmp_path)
    (seen,) = endpoint.seen
    assert seen.body == {
        "call_id": detail.record.id,
        "agent": "frontdesk",
        "tool": "lookup_order",
        "arguments": {"order_id": "A1234"},
        "caller": detail.record.from_number,
        "variables": {},
    }
    assert {"result": ANSWER} in outputs  # what the model was given
    assert [t.name for t in detail.tool_calls] == ["lookup_order", "end_call"]
    lookup = detail.tool_calls[0]
    assert lookup.ok and lookup.result == {"result": ANSWER}
    said = [(t.role, t.text.lower().strip(".!")) for t in detail.transcript]
    assert ("agent", "it ships tomorrow") in said


async def test_variables_of_a_placed_call_are_heard_in_the_greeting(tmp_path: Path) -> None:
    agents = agent_book(
        system_prompt="You remind {{customer_name}} of order {{order_id}}.",
        greeting="Hello {{customer_name}}, about your order.",
    )
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=30.0, max_call_s=40.0) as twilio,
        running_app(
            tmp_path,
            openai_env(oai)
            | twilio_env(twilio, "openai")
            | {"SWITCHBOARD_OUTBOUND_ALLOW": "+15550100999"},
            agents=agents,
        ) as (base, _settings, _app),
        httpx.AsyncClient(base_url=base, headers=auth) as http,
    ):
        body: dict[str, Any] = {"carrier": "twilio", "to": "+15550100999", "from": "+15550100000"}
        unfilled = await http.post("/v1/calls", json=body | {"variables": {"order_id": "A1"}})
        assert unfilled.status_code == 422
        assert "{{customer_name}}" in unfilled.json()["error"]["message"]
        mistyped = await http.post("/v1/calls", json=body | {"variables": {"order_id": 1}})
        assert mistyped.status_code == 422
        assert twilio.requests == []  # nothing was dialled
        variables = {"customer_name": "Ada", "order_id": "A1234"}
        placed = await http.post("/v1/calls", json=body | {"variables": variables})
        assert placed.status_code == 201, placed.text
        call_id = placed.json()["call_id"]
        await until_said(tmp_path, lambda s: ("agent", "Hello Ada, about your order.") in s)
        assert (await http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
        await twilio.wait_calls(timeout_s=20 * UNIT)
    instructions = [
        e["session"]["instructions"]
        for e in oai.received
        if e.get("type") == "session.update" and "instructions" in e.get("session", {})
    ]
    assert instructions and instructions[0] == "You remind Ada of order A1234."
    detail = await read_only_call(tmp_path)
    assert detail.record.extra["variables"] == variables


def _sales_and_frontdesk() -> AgentBook:
    frontdesk = agent_book().get("frontdesk")
    assert frontdesk is not None
    sales = frontdesk.model_copy(
        update={
            "name": "sales",
            "numbers": [],
            "greeting": "Hi {{customer_name}}, welcome back.",
            "variables": {"customer_name": ""},
        }
    )
    return AgentBook([frontdesk, Agent.model_validate(sales.model_dump())])


@pytest.mark.parametrize(
    ("answer", "agent", "greeting", "kind", "reason"),
    [
        (
            Answer(200, {"agent": "sales", "variables": {"customer_name": "Ada"}}),
            "sales",
            "Hi Ada, welcome back.",
            "routing.agent_request",
            None,
        ),
        (
            Answer(hold=True),
            "frontdesk",
            "Hello, thanks for calling.",
            "routing.fallback",
            "no answer",
        ),
        (
            Answer(500, {"error": "db down"}),
            "frontdesk",
            "Hello, thanks for calling.",
            "routing.fallback",
            "the service answered HTTP 500",
        ),
    ],
    ids=["chosen", "timeout", "error"],
)
async def test_agent_request_url_chooses_the_agent_or_falls_back_with_the_reason(
    tmp_path: Path, answer: Answer, agent: str, greeting: str, kind: str, reason: str | None
) -> None:
    async with (
        Endpoint(answer=lambda _s: answer) as endpoint,
        OpenAIRealtimeEmulator(script=BYE_SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        env = (
            openai_env(oai)
            | twilio_env(twilio, "openai")
            | {
                "SWITCHBOARD_WEBHOOK_SECRET": SECRET,
                "SWITCHBOARD_AGENT_REQUEST_URL": endpoint.url("/route"),
                "SWITCHBOARD_AGENT_REQUEST_TIMEOUT_S": str(1.0 * UNIT),
            }
        )
        async with running_app(tmp_path, env, agents=_sales_and_frontdesk()) as (base, _s, _a):
            report = await place_twilio_call(twilio, base, caller_pcm("thanks bye", gap_ms=4000))
    assert report.violations == [] and oai.violations == []
    assert endpoint.unverified == []
    (question,) = endpoint.seen
    assert question.body["default_agent"] == "frontdesk"
    detail = await read_only_call(tmp_path)
    assert detail.record.agent == agent
    said = [(t.role, t.text) for t in detail.transcript]
    assert said[0] == ("agent", greeting)
    (entry,) = [t for t in detail.timeline if t.kind.startswith("routing.")]
    assert entry.kind == kind
    if reason is None:
        assert entry.data["agent"] == "sales" and entry.data["variables"] == ["customer_name"]
        assert detail.record.extra["variables"] == {"customer_name": "Ada"}
    else:
        assert entry.data["reason"].startswith(reason) and entry.data["agent"] == "frontdesk"
        assert "variables" not in detail.record.extra
