"""The call planner: each call's agent and variables — placed, asked of ``agent_request_url``
(a loopback endpoint), or routed by agents.yaml — and what it puts on the call's timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tests.conftest import UNIT
from tests.integrations.endpoint import SECRET, Answer, Endpoint, Seen

from switchboard.agents import Agent, AgentBook
from switchboard.bridge.planner import CallPlanner, Placement
from switchboard.config import load_settings
from switchboard.errors import ConfigError
from switchboard.integrations.routing import AgentRequester
from switchboard.integrations.signing import WebhookSecret
from switchboard.telephony.base import CallDirection, IncomingCall, TelephonyType

pytestmark = pytest.mark.anyio

INBOUND = IncomingCall(TelephonyType.TWILIO, "CA1", "+15550111111", "+15550100000")


def book() -> AgentBook:
    return AgentBook(
        [
            Agent(
                name="frontdesk",
                numbers=["*"],
                system_prompt="You are the front desk.",
                greeting="Hello, thanks for calling.",
            ),
            Agent(
                name="sales",
                system_prompt="You sell to {{customer_name}} ({{tier}}).",
                greeting="Hi {{customer_name}}!",
                variables={"tier": "standard"},
            ),
        ]
    )


def agent(name: str) -> Agent:
    found = book().get(name)
    assert found is not None
    return found


@asynccontextmanager
async def planner_asking(
    answer: Callable[[Seen], Answer], timeout_s: float = 2.0
) -> AsyncIterator[tuple[CallPlanner, Endpoint]]:
    async with Endpoint(answer=answer) as endpoint:
        requester = AgentRequester(
            endpoint.url("/route"), secret=WebhookSecret.parse(SECRET), timeout_s=timeout_s
        )
        try:
            yield CallPlanner(agent_requests=requester), endpoint
        finally:
            await requester.aclose()


async def test_the_services_choice_of_agent_and_variables_is_used() -> None:
    choice = {"agent": "sales", "variables": {"customer_name": "Ada"}}
    async with planner_asking(lambda _s: Answer(200, choice)) as (planner, endpoint):
        routed = await planner.route(book(), INBOUND, "call_1", None)
    assert endpoint.seen[0].body["default_agent"] == "frontdesk"
    assert routed.agent is not None and routed.agent.name == "sales"
    assert routed.agent.greeting == "Hi Ada!"
    assert routed.agent.system_prompt == "You sell to Ada (standard)."
    assert routed.agent.variables == {"tier": "standard", "customer_name": "Ada"}
    assert routed.variables == {"customer_name": "Ada"}
    ((kind, data),) = routed.timeline
    assert kind == "routing.agent_request"
    assert data["agent"] == "sales" and data["variables"] == ["customer_name"]


async def test_no_agent_in_the_answer_keeps_the_static_one_with_the_variables() -> None:
    async with planner_asking(lambda _s: Answer(200, {"variables": {"x": "1"}})) as (planner, _e):
        routed = await planner.route(book(), INBOUND, "call_1", None)
    assert routed.agent is not None and routed.agent.name == "frontdesk"
    assert routed.variables == {"x": "1"}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(hold=True), f"no answer within {0.3 * UNIT:g} s"),
        (Answer(503, {"error": "maintenance"}), "the service answered HTTP 503"),
        (Answer(200, {"agent": "nobody"}), "unknown agent 'nobody'"),
        (Answer(200, {"agent": "sales", "variables": {"n": 5}}), "the answer's variables:"),
    ],
)
async def test_a_failed_question_falls_back_to_agents_yaml_with_the_reason(
    answer: Answer, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with planner_asking(lambda _s: answer, timeout_s=0.3 * UNIT) as (planner, _e):
        routed = await planner.route(book(), INBOUND, "call_1", None)
    assert routed.agent is not None and routed.agent.name == "frontdesk"
    assert routed.variables == {}
    ((kind, data),) = routed.timeline
    assert kind == "routing.fallback"
    assert data["reason"].startswith(reason) and data["agent"] == "frontdesk"
    assert "routed by agents.yaml" in caplog.text


async def test_outbound_calls_are_not_asked() -> None:
    async with planner_asking(lambda _s: Answer(200, {"agent": "sales"})) as (planner, endpoint):
        placed = planner.placement(agent("sales"), {"customer_name": "Bo"})
        outbound = IncomingCall(
            TelephonyType.TWILIO,
            "CA2",
            "+15550100000",
            "+15550100999",
            CallDirection.OUTBOUND,
            call_id="call_2",
        )
        routed = await planner.route(book(), outbound, "call_2", placed)
        unplaced = await planner.route(book(), outbound, "call_3", None)
    assert endpoint.seen == []
    assert routed.agent is not None and routed.agent.greeting == "Hi Bo!"
    assert routed.timeline == ()
    assert unplaced.agent is not None and unplaced.agent.name == "frontdesk"


def test_placing_a_call_refuses_unfilled_placeholders_and_bad_variables() -> None:
    sales = agent("sales")
    assert CallPlanner.placement(sales, {"customer_name": "Ada"}) == Placement(
        "sales", {"customer_name": "Ada"}
    )
    with pytest.raises(ConfigError, match=r"agent 'sales' uses \{\{customer_name\}\}"):
        CallPlanner.placement(sales, {})
    with pytest.raises(ConfigError, match="variables: variable name '1x'"):
        CallPlanner.placement(sales, {"1x": "y", "customer_name": "Ada"})


async def test_inbound_placeholders_without_a_variable_are_left_empty_and_noted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sales_only = AgentBook([agent("sales").model_copy(update={"numbers": ["*"]})])
    routed = await CallPlanner().route(sales_only, INBOUND, "call_1", None)
    assert routed.agent is not None and routed.agent.greeting == "Hi !"
    assert routed.timeline == (("variables.missing", {"names": ["customer_name"]}),)
    assert "no variable for customer_name" in caplog.text


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SWITCHBOARD_AGENT_REQUEST_URL": "http://127.0.0.1:9/route"}, "AGENT_REQUEST_URL needs"),
        ({}, "HTTP tools (agents.support.tools.lookup) need SWITCHBOARD_WEBHOOK_SECRET"),
    ],
)
def test_unsigned_requests_are_refused_at_start(env: dict[str, str], problem: str) -> None:
    settings = load_settings(SWITCHBOARD_WEBHOOK_SECRET="", **env)
    tool: dict[str, Any] = {
        "name": "lookup",
        "description": "Look up",
        "http": {"url": "https://api.example.com/x"},
    }
    agents = AgentBook(
        [Agent(name="support", numbers=["*"], system_prompt="p", tools=[tool] if not env else [])]
    )
    with pytest.raises(ConfigError) as caught:
        CallPlanner.from_settings(settings, agents)
    assert problem in str(caught.value)


async def test_with_a_secret_the_planner_has_what_the_settings_ask_for() -> None:
    settings = load_settings(
        SWITCHBOARD_WEBHOOK_SECRET=SECRET,
        SWITCHBOARD_AGENT_REQUEST_URL="https://route.example.com/agent",
        SWITCHBOARD_AGENT_REQUEST_TIMEOUT_S="0.8",
    )
    planner = CallPlanner.from_settings(settings, book())
    try:
        assert planner.http_tools is None  # no agent declares HTTP tools
        assert planner.agent_requests is not None and planner.agent_requests.timeout_s == 0.8
    finally:
        await planner.aclose()
