"""HTTP tools: declared in agents.yaml, called over loopback against a test endpoint that checks
every signature with the ``standardwebhooks`` reference library."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.agents import Agent, AgentBook
from switchboard.emulators.loopback import bind_loopback
from switchboard.errors import ConfigError
from switchboard.integrations.http_tools import HttpToolClient
from switchboard.integrations.signing import WebhookSecret
from switchboard.tools import ToolContext, ToolRegistry
from tests.conftest import UNIT
from tests.integrations.endpoint import SECRET, Answer, Endpoint

pytestmark = pytest.mark.anyio

API_KEY = "myco-key-5f1e9c"  # what ${MYCO_KEY} expands to; must never be shown
TOOL = """
version: 1
agents:
  support:
    numbers: ["*"]
    system_prompt: You help with orders.
    tools:
      - end_call
      - name: lookup_order
        description: Find an order by its number
        parameters:
          type: object
          properties: {order_id: {type: string, pattern: "^A[0-9]+$"}, express: {type: boolean}}
          required: [order_id]
          additionalProperties: false
        http:
          url: "@URL@?shop={{shop}}&token=${URL_TOKEN}"
          timeout_s: @TIMEOUT@
          headers: {X-Api-Key: "${MYCO_KEY}", X-Customer: "{{customer_name}}"}
          max_response_bytes: 2048
"""
ENV = {"MYCO_KEY": API_KEY, "URL_TOKEN": "tok-77aa"}


def load(tmp_path: Path, url: str, timeout_s: float = 5.0, **env: str) -> Agent:
    path = tmp_path / "agents.yaml"
    path.write_text(TOOL.replace("@URL@", url).replace("@TIMEOUT@", str(timeout_s)))
    agent = AgentBook.load(path, environ=ENV | env).get("support")
    assert agent is not None
    return agent


@pytest.fixture
async def client() -> AsyncIterator[HttpToolClient]:
    tools = HttpToolClient(WebhookSecret.parse(SECRET))
    yield tools
    await tools.aclose()


def context() -> ToolContext:
    return ToolContext(
        call_id="call_42",
        caller="+15550111111",
        agent="support",
        variables={"customer_name": "Ada Lovelace", "shop": "Paris & Co"},
    )


async def registry(tmp_path: Path, endpoint: Endpoint, client: HttpToolClient) -> ToolRegistry:
    return load(tmp_path, endpoint.url("/voice/lookup")).tool_registry(http=client)


async def test_a_call_is_signed_and_its_json_answer_is_the_result(
    tmp_path: Path, client: HttpToolClient
) -> None:
    async with Endpoint(
        answer=lambda s: Answer(200, {"status": "shipped", "eta": "tomorrow"})
    ) as ep:
        tools = await registry(tmp_path, ep, client)
        assert tools.names() == ["end_call", "lookup_order"]
        result = await tools.invoke(
            "lookup_order", '{"order_id": "A1234"}', context(), call_id="fc1"
        )
    assert result.ok, result.error
    assert result.output == {"result": {"status": "shipped", "eta": "tomorrow"}}
    assert ep.unverified == []
    (seen,) = ep.seen
    assert seen.body == {
        "call_id": "call_42",
        "agent": "support",
        "tool": "lookup_order",
        "arguments": {"order_id": "A1234"},
        "caller": "+15550111111",
        "variables": {"customer_name": "Ada Lovelace", "shop": "Paris & Co"},
    }
    assert seen.path == "/voice/lookup"
    assert seen.query == "shop=Paris%20%26%20Co&token=tok-77aa"  # {{shop}} percent-encoded
    assert seen.headers["x-api-key"] == API_KEY
    assert seen.headers["x-customer"] == "Ada Lovelace"
    assert seen.headers["webhook-id"].startswith("msg_")


async def test_the_schema_given_to_the_model_is_the_declared_one(
    tmp_path: Path, client: HttpToolClient
) -> None:
    tools = load(tmp_path, "https://api.example.com/lookup").tool_registry(http=client)
    (schema,) = [s for s in tools.schemas() if s["name"] == "lookup_order"]
    assert schema["description"] == "Find an order by its number"
    assert schema["parameters"]["required"] == ["order_id"]
    assert schema["parameters"]["properties"]["order_id"]["pattern"] == "^A[0-9]+$"


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, "'order_id' is a required property"),
        ({"order_id": 1234}, "order_id: 1234 is not of type 'string'"),
        ({"order_id": "B1"}, "order_id: 'B1' does not match '^A[0-9]+$'"),
        ({"order_id": "A1", "gift": True}, "Additional properties are not allowed"),
        ("not json", "arguments are not valid JSON"),
    ],
)
async def test_invalid_arguments_are_refused_before_any_request(
    tmp_path: Path, client: HttpToolClient, arguments: Any, problem: str
) -> None:
    async with Endpoint() as ep:
        tools = await registry(tmp_path, ep, client)
        result = await tools.invoke("lookup_order", arguments, context())
    assert not result.ok
    assert result.error is not None and problem in result.error
    assert result.error.startswith("invalid arguments for lookup_order")
    assert ep.seen == []


def _failing(answer: Answer) -> Any:
    return lambda _seen: answer


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Answer(404, {"error": "no such order"}), "the service answered HTTP 404: no such order"),
        (Answer(500, raw=b"<html>oops</html>"), "the service answered HTTP 500"),
        (Answer(200, raw=b"x" * 2049), "the service's answer is larger than 2048 bytes"),
        (Answer(200, raw=b"<html>"), "the service's answer is not JSON"),
        (Answer(redirect_to="http://127.0.0.1:9/elsewhere"), "the service answered HTTP 307"),
    ],
)
async def test_a_failed_answer_is_an_error_the_model_can_talk_about(
    tmp_path: Path, client: HttpToolClient, answer: Answer, error: str
) -> None:
    async with Endpoint(answer=_failing(answer)) as ep:
        tools = await registry(tmp_path, ep, client)
        result = await tools.invoke("lookup_order", {"order_id": "A1"}, context())
    assert not result.ok
    assert result.error == f"lookup_order: {error}"
    assert result.output == {"error": result.error}
    assert len(ep.seen) == 1  # one request, the redirect not followed


async def test_an_empty_answer_is_a_null_result(tmp_path: Path, client: HttpToolClient) -> None:
    async with Endpoint(answer=_failing(Answer(204, raw=b""))) as ep:
        tools = await registry(tmp_path, ep, client)
        result = await tools.invoke("lookup_order", {"order_id": "A1"}, context())
    assert result.ok and result.output == {"result": None}


async def test_no_answer_in_time_is_an_error_before_the_registrys_own_limit(
    tmp_path: Path, client: HttpToolClient
) -> None:
    async with Endpoint(answer=_failing(Answer(hold=True))) as ep:
        limit_s = 0.5 * UNIT
        tools = load(tmp_path, ep.url("/slow"), timeout_s=limit_s).tool_registry(http=client)
        result = await tools.invoke("lookup_order", {"order_id": "A1"}, context())
    assert result.error == f"lookup_order: the service gave no answer within {limit_s:g} s"
    # the request's own limit ends it, before the registry's (a second later) would
    assert limit_s * 1000 - 50 < result.duration_ms < limit_s * 1000 + 900


async def test_an_unreachable_service_is_an_error(tmp_path: Path, client: HttpToolClient) -> None:
    sock = bind_loopback()  # bound, never listening: connections are refused
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/lookup"
        tools = load(tmp_path, url).tool_registry(http=client)
        result = await tools.invoke("lookup_order", {"order_id": "A1"}, context())
    finally:
        sock.close()
    assert result.error == "lookup_order: the service could not be reached (ConnectError)"


async def test_secrets_are_never_logged_or_shown(
    tmp_path: Path, client: HttpToolClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = iter([Answer(200, {"ok": True}), Answer(503, {"message": "down"}), Answer(hold=True)])
    async with Endpoint(answer=lambda _s: next(answers)) as ep:
        agent = load(tmp_path, ep.url("/lookup"), timeout_s=2.0 * UNIT)
        tools = agent.tool_registry(http=client)
        results = [
            await tools.invoke("lookup_order", {"order_id": "A1"}, context()) for _ in range(3)
        ]
    assert [r.ok for r in results] == [True, False, False]
    shown = caplog.text + repr(agent) + str(agent.model_dump()) + repr(results)
    for secret in (API_KEY, "tok-77aa", SECRET, SECRET.removeprefix("whsec_")):
        assert secret not in shown
    assert "http tool lookup_order → http://127.0.0.1" in caplog.text
    assert "?…" in caplog.text  # the URL's query is not logged


def test_dollar_variables_expand_at_load_and_unset_ones_are_named(tmp_path: Path) -> None:
    agent = load(tmp_path, "https://api.example.com/lookup")
    (http_tool,) = agent.http_tools
    assert http_tool.http.resolved_headers["X-Api-Key"] == API_KEY
    assert http_tool.http.headers["X-Api-Key"] == "${MYCO_KEY}"  # as written
    path = tmp_path / "agents.yaml"
    with pytest.raises(ConfigError, match=r"agents.support.tools.1.*\$\{MYCO_KEY\} is not set"):
        AgentBook.load(path, environ={"URL_TOKEN": "t"})


@pytest.mark.parametrize(
    ("tool", "problem"),
    [
        ({"http": {"url": "ftp://x.example.com/"}}, "url must be an http:// or https:// URL"),
        ({"http": {"url": "${WHERE}"}}, "url must be an http:// or https:// URL"),
        ({"http": {"url": "https://x.example.com", "headers": {"webhook-id": "1"}}}, "is set by"),
        ({"http": {"url": "https://x.example.com", "headers": {"a b": "1"}}}, "not a valid header"),
        ({"parameters": {"type": "string"}}, "parameters must be a JSON schema with type: object"),
        ({"parameters": {"type": "object", "required": "x"}}, "not a valid JSON schema"),
        ({"name": "end_call"}, "tools named more than once: end_call"),
        ({"http": {"url": "https://x.example.com", "timeout_s": 0}}, "greater than 0"),
    ],
)
def test_bad_declarations_are_refused_at_load(tool: dict[str, Any], problem: str) -> None:
    declared: dict[str, Any] = {
        "name": "lookup",
        "description": "Look up",
        "http": {"url": "https://x.example.com"},
    } | tool
    body = {"name": "a", "system_prompt": "p", "tools": ["end_call", declared]}
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")) as caught:
        Agent.model_validate(body, context={"environ": {"WHERE": "file:///etc/secret-path"}})
    assert "secret-path" not in str(caught.value)


def test_an_agent_with_http_tools_needs_a_client(tmp_path: Path) -> None:
    agent = load(tmp_path, "https://api.example.com/lookup")
    with pytest.raises(Exception, match="HTTP tools: they need an HTTP client"):
        agent.tool_registry()
