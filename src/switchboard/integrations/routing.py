"""Asking the user's service which agent answers an inbound call: ``agent_request_url``.

When ``SWITCHBOARD_AGENT_REQUEST_URL`` is set, each inbound call is described to it in a
signed POST (Standard Webhooks, ``SWITCHBOARD_WEBHOOK_SECRET``) before it is answered::

    {"call_id": "call_…", "carrier": "twilio", "carrier_call_id": "CA…",
     "from_number": "+15550111111", "to_number": "+15550100000", "default_agent": "frontdesk"}

and answers with the agent and the call's variables, both optional (``agent`` absent or null:
the agent agents.yaml routes the number to)::

    {"agent": "sales", "variables": {"customer_name": "Ada"}}

Anything else — no answer within ``SWITCHBOARD_AGENT_REQUEST_TIMEOUT_S`` (1.5 s), a failed
connection, a non-2xx status, an answer that is not such an object, too large (16 KiB), or an
unknown agent — is a :class:`RoutingFailed` whose reason goes on the call's timeline while the
call is routed by agents.yaml (:mod:`switchboard.integrations.calls`). Redirects are not
followed. :func:`parse_choice` is the pure part.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

import httpx

from switchboard.errors import SwitchboardError
from switchboard.integrations.events import redact_url
from switchboard.integrations.http_tools import post_json
from switchboard.integrations.signing import WebhookSecret, webhook_headers
from switchboard.integrations.variables import check_variables
from switchboard.telephony.base import IncomingCall

__all__ = ["AgentChoice", "AgentRequester", "RoutingFailed", "parse_choice"]

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 16 * 1024


class RoutingFailed(SwitchboardError):
    """``agent_request_url`` gave no usable answer; the message is the reason (no URL)."""


@dataclass(frozen=True, slots=True)
class AgentChoice:
    """What ``agent_request_url`` chose: an agent name (None: the static route) and variables."""

    agent: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


def parse_choice(body: bytes) -> AgentChoice:
    """The answer's :class:`AgentChoice`.

    Raises:
        RoutingFailed: not a JSON object of ``agent`` (a string or null) and ``variables``
            (checked as a call's variables), or with other keys.
    """
    try:
        data = json.loads(body) if body.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RoutingFailed("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise RoutingFailed("the answer is not a JSON object")
    unknown = sorted(set(data) - {"agent", "variables"})
    if unknown:
        raise RoutingFailed(f"the answer has unknown keys: {', '.join(unknown)[:200]}")
    agent = data.get("agent")
    if agent is not None and (not isinstance(agent, str) or not agent):
        raise RoutingFailed("the answer's agent is not a name")
    try:
        variables = check_variables(data.get("variables") or {})
    except ValueError as exc:
        raise RoutingFailed(f"the answer's variables: {exc}") from None
    return AgentChoice(agent, variables)


class AgentRequester:
    """Asks ``agent_request_url`` about inbound calls (one per app).

    Args:
        url: the service's URL (http or https).
        secret: the Standard Webhooks key requests are signed with.
        timeout_s: the deadline of one question (connect, send and answer).
        transport: the HTTP transport (not closed by :meth:`aclose`); one is made when omitted.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: WebhookSecret,
        timeout_s: float = 1.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._secret = secret
        self._owns_transport = transport is None
        self._transport = transport or httpx.AsyncHTTPTransport()

    async def aclose(self) -> None:
        """Close the HTTP transport if this object made it."""
        if self._owns_transport:
            await self._transport.aclose()

    async def ask(self, call: IncomingCall, call_id: str, default_agent: str | None) -> AgentChoice:
        """The service's choice for ``call``.

        Raises:
            RoutingFailed: no usable answer in time (the message says why).
        """
        body = json.dumps(
            {
                "call_id": call_id,
                "carrier": call.carrier.value,
                "carrier_call_id": call.carrier_call_id,
                "from_number": call.from_number,
                "to_number": call.to_number,
                "default_agent": default_agent,
            },
            separators=(",", ":"),
        ).encode()
        headers = webhook_headers(self._secret, f"msg_{uuid.uuid4().hex}", body)
        try:
            status, answer = await post_json(
                self._transport,
                self.url,
                body,
                headers,
                timeout_s=self.timeout_s,
                max_bytes=MAX_ANSWER_BYTES,
                agent="routing",
            )
        except TimeoutError:
            raise RoutingFailed(f"no answer within {self.timeout_s:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise RoutingFailed(f"could not reach the service ({type(exc).__name__})") from None
        logger.debug("agent request %s → %s: HTTP %d", call_id, redact_url(self.url), status)
        if not 200 <= status < 300:
            raise RoutingFailed(f"the service answered HTTP {status}")
        if answer is None:
            raise RoutingFailed(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        return parse_choice(answer)
