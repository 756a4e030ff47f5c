"""``agent_request_url``: the answer's parsing, and the signed question against a loopback
endpoint (checked with the ``standardwebhooks`` reference library)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from switchboard.emulators.loopback import bind_loopback
from switchboard.integrations.routing import (
    AgentChoice,
    AgentRequester,
    RoutingFailed,
    parse_choice,
)
from switchboard.integrations.signing import WebhookSecret
from switchboard.telephony.base import IncomingCall, TelephonyType
from tests.conftest import UNIT
from tests.integrations.endpoint import SECRET, Answer, Endpoint

pytestmark = pytest.mark.anyio

CALL = IncomingCall(TelephonyType.TWILIO, "CA123", "+15550111111", "+15550100000")


@pytest.mark.parametrize(
    ("body", "choice"),
    [
        (
            b'{"agent": "sales", "variables": {"customer_name": "Ada"}}',
            AgentChoice("sales", {"customer_name": "Ada"}),
        ),
        (b'{"agent": null}', AgentChoice()),
        (b"{}", AgentChoice()),
        (b"", AgentChoice()),
        (b'{"variables": {"vip": "yes"}}', AgentChoice(None, {"vip": "yes"})),
    ],
)
def test_answers_are_read(body: bytes, choice: AgentChoice) -> None:
    assert parse_choice(body) == choice


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "the answer is not JSON"),
        (b'["sales"]', "the answer is not a JSON object"),
        (b'{"agnet": "sales"}', "the answer has unknown keys: agnet"),
        (b'{"agent": 3}', "the answer's agent is not a name"),
        (b'{"agent": ""}', "the answer's agent is not a name"),
        (b'{"variables": {"n": 1}}', "the answer's variables: variable 'n' must be a string"),
        (b'{"variables": "x"}', "the answer's variables: variables must be an object"),
    ],
)
def test_bad_answers_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(RoutingFailed) as caught:
        parse_choice(body)
    assert str(caught.value).startswith(reason)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    async with Endpoint() as ep:
        yield ep


def requester(url: str, timeout_s: float = 2.0) -> AgentRequester:
    return AgentRequester(url, secret=WebhookSecret.parse(SECRET), timeout_s=timeout_s * UNIT)


async def test_the_question_is_signed_and_describes_the_call(endpoint: Endpoint) -> None:
    endpoint.answer = lambda _s: Answer(200, {"agent": "sales", "variables": {"tier": "gold"}})
    asker = requester(endpoint.url("/route?token=abc"))
    try:
        choice = await asker.ask(CALL, "call_1", "frontdesk")
    finally:
        await asker.aclose()
    assert choice == AgentChoice("sales", {"tier": "gold"})
    assert endpoint.unverified == []
    (seen,) = endpoint.seen
    assert seen.body == {
        "call_id": "call_1",
        "carrier": "twilio",
        "carrier_call_id": "CA123",
        "from_number": "+15550111111",
        "to_number": "+15550100000",
        "default_agent": "frontdesk",
    }
    assert seen.query == "token=abc"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(500, {"error": "db down"}), "the service answered HTTP 500"),
        (Answer(redirect_to="http://127.0.0.1:9/x"), "the service answered HTTP 307"),
        (Answer(200, raw=b"x" * (16 * 1024 + 1)), "the answer is larger than 16384 bytes"),
        (Answer(200, raw=b"nope"), "the answer is not JSON"),
    ],
)
async def test_a_failed_answer_is_a_reason(endpoint: Endpoint, answer: Answer, reason: str) -> None:
    endpoint.answer = lambda _s: answer
    asker = requester(endpoint.url("/route"))
    try:
        with pytest.raises(RoutingFailed) as caught:
            await asker.ask(CALL, "call_1", None)
    finally:
        await asker.aclose()
    assert str(caught.value) == reason


async def test_no_answer_in_time_is_a_reason(endpoint: Endpoint) -> None:
    endpoint.answer = lambda _s: Answer(hold=True)
    asker = requester(endpoint.url("/route"), timeout_s=0.3)
    try:
        with pytest.raises(RoutingFailed) as caught:
            await asker.ask(CALL, "call_1", None)
    finally:
        await asker.aclose()
    assert str(caught.value) == f"no answer within {0.3 * UNIT:g} s"


async def test_an_unreachable_service_is_a_reason() -> None:
    sock = bind_loopback()
    asker = requester(f"http://127.0.0.1:{sock.getsockname()[1]}/route")
    try:
        with pytest.raises(RoutingFailed) as caught:
            await asker.ask(CALL, "call_1", None)
    finally:
        await asker.aclose()
        sock.close()
    assert str(caught.value) == "could not reach the service (ConnectError)"
