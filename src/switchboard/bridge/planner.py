"""Each call's agent, variables and tools: what the call manager asks before answering.

:class:`CallPlanner` is built once per app from the settings and the agent book. For each
call the manager asks :meth:`CallPlanner.route` for the call's agent — the placed one for
``POST /v1/calls``, else ``agent_request_url``'s choice for an inbound call when it is set, else
agents.yaml's route — with the call's variables substituted in its prompt and greeting. What
happened on the way (the service's choice, the reason it was not used, placeholders left
empty) comes back as timeline entries for the manager to record once the call record exists::

    routing.agent_request  {"agent": "sales", "variables": ["customer_name"], "ms": 41}
    routing.fallback       {"reason": "no answer within 1.5 s", "agent": "frontdesk"}
    variables.missing      {"names": ["customer_name"]}

Variable values never go on the timeline or in a log line; they are stored with the call
record (``extra.variables``), where ``GET /v1/calls/{id}`` shows them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.agents import Agent, AgentBook
from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.integrations.http_tools import HttpToolClient
from switchboard.integrations.routing import AgentRequester, RoutingFailed
from switchboard.integrations.signing import WebhookSecret
from switchboard.telephony.amd import MachineDetection
from switchboard.telephony.base import CallDirection, IncomingCall
from switchboard.tools.registry import ToolRegistry

__all__ = ["CallPlanner", "Placement", "RoutedCall"]

logger = logging.getLogger(__name__)

TimelineEntry = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Placement:
    """An outbound call's agent and variables, from ``POST /v1/calls`` until it is answered."""

    agent: str
    variables: dict[str, str] = field(default_factory=dict)
    #: answering-machine detection asked for when the call was placed (None: none)
    machine_detection: MachineDetection | None = None


@dataclass(frozen=True, slots=True)
class RoutedCall:
    """The answer of :meth:`CallPlanner.route`.

    Attributes:
        agent: the call's agent, variables applied; None when no agent answers the number.
        variables: the call's own variables (the agent's defaults not included).
        timeline: entries to record on the call's timeline, in order.
    """

    agent: Agent | None
    variables: dict[str, str] = field(default_factory=dict)
    timeline: tuple[TimelineEntry, ...] = ()


class CallPlanner:
    """Plans calls with the app's HTTP tool client and ``agent_request_url`` requester.

    Args:
        http_tools: sends HTTP tools' requests (None: no agent declares HTTP tools).
        agent_requests: asks ``agent_request_url`` about inbound calls (None: not set).
    """

    def __init__(
        self,
        *,
        http_tools: HttpToolClient | None = None,
        agent_requests: AgentRequester | None = None,
    ) -> None:
        self.http_tools = http_tools
        self.agent_requests = agent_requests

    @classmethod
    def from_settings(cls, settings: Settings, agents: AgentBook) -> CallPlanner:
        """What ``settings`` and ``agents`` ask for.

        Raises:
            ConfigError: HTTP tools or ``SWITCHBOARD_AGENT_REQUEST_URL`` without a valid
                ``SWITCHBOARD_WEBHOOK_SECRET`` to sign their requests.
        """
        raw = settings.secret("webhook_secret")
        secret = WebhookSecret.parse(raw) if raw else None
        declared = [f"agents.{a.name}.tools.{t.name}" for a in agents for t in a.http_tools]
        if declared and secret is None:
            raise ConfigError(
                f"HTTP tools ({', '.join(declared[:3])}) need SWITCHBOARD_WEBHOOK_SECRET "
                "to sign their requests"
            )
        url = settings.agent_request_url
        if url and secret is None:
            raise ConfigError(
                "SWITCHBOARD_AGENT_REQUEST_URL needs SWITCHBOARD_WEBHOOK_SECRET to sign requests"
            )
        return cls(
            http_tools=HttpToolClient(secret) if declared and secret is not None else None,
            agent_requests=AgentRequester(
                url, secret=secret, timeout_s=settings.agent_request_timeout_s
            )
            if url and secret is not None
            else None,
        )

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        if self.http_tools is not None:
            await self.http_tools.aclose()
        if self.agent_requests is not None:
            await self.agent_requests.aclose()

    def tools(self, agent: Agent) -> ToolRegistry:
        """``agent``'s tools (:meth:`Agent.tool_registry`), HTTP ones included.

        Raises:
            ToolError: a tool module cannot be loaded or a tool name is unknown.
        """
        return agent.tool_registry(http=self.http_tools)

    @staticmethod
    def placement(agent: Agent, variables: Mapping[str, str] | None) -> Placement:
        """An outbound call of ``agent`` with ``variables``, checked before it is dialled.

        Raises:
            ConfigError: the variables are invalid, or the agent's prompt or greeting uses a
                ``{{name}}`` neither they nor the agent's defaults give.
        """
        try:
            _, missing = agent.with_variables(variables)
        except ValueError as exc:
            raise ConfigError(f"variables: {exc}") from exc
        if missing:
            names = ", ".join(f"{{{{{name}}}}}" for name in missing)
            raise ConfigError(f"agent {agent.name!r} uses {names}: give it in 'variables'")
        return Placement(agent.name, dict(variables or {}))

    async def route(
        self, book: AgentBook, call: IncomingCall, call_id: str, placed: Placement | None
    ) -> RoutedCall:
        """The agent answering ``call`` and its variables (see the module docstring)."""
        timeline: list[TimelineEntry] = []
        variables: dict[str, str] = {}
        if placed is not None:
            agent, variables = book.get(placed.agent), dict(placed.variables)
        elif call.direction is CallDirection.OUTBOUND:
            agent = book.route(call.from_number)
        else:
            agent = book.route(call.to_number)
            if self.agent_requests is not None:
                agent, variables = await self._ask(book, call, call_id, agent, timeline)
        if agent is None:
            return RoutedCall(None, variables, tuple(timeline))
        try:
            call_agent, missing = agent.with_variables(variables)
        except ValueError as exc:  # the call's and the agent's together are too many
            timeline.append(("variables.refused", {"reason": str(exc)}))
            variables = {}
            call_agent, missing = agent.with_variables(variables)
        if missing:
            timeline.append(("variables.missing", {"names": list(missing)}))
            logger.warning(
                "call %s: no variable for %s in agent %s's prompt or greeting: left empty",
                call_id,
                ", ".join(missing),
                agent.name,
                extra={"call_id": call_id},
            )
        return RoutedCall(call_agent, variables, tuple(timeline))

    async def _ask(
        self,
        book: AgentBook,
        call: IncomingCall,
        call_id: str,
        static: Agent | None,
        timeline: list[TimelineEntry],
    ) -> tuple[Agent | None, dict[str, str]]:
        assert self.agent_requests is not None
        started = time.perf_counter()
        try:
            choice = await self.agent_requests.ask(
                call, call_id, static.name if static is not None else None
            )
            chosen = book.get(choice.agent) if choice.agent is not None else static
            if chosen is None:
                shown = choice.agent[:64] if choice.agent is not None else None
                raise RoutingFailed(
                    f"unknown agent {shown!r}" if shown else "no agent for this number"
                )
        except RoutingFailed as exc:
            timeline.append(
                ("routing.fallback", {"reason": str(exc), "agent": static.name if static else None})
            )
            logger.warning(
                "call %s: agent_request_url: %s; routed by agents.yaml",
                call_id,
                exc,
                extra={"call_id": call_id},
            )
            return static, {}
        elapsed_ms = round((time.perf_counter() - started) * 1000.0)
        logger.info(
            "call %s: agent_request_url chose agent %s in %d ms",
            call_id,
            chosen.name,
            elapsed_ms,
            extra={"call_id": call_id},
        )
        timeline.append(
            (
                "routing.agent_request",
                {"agent": chosen.name, "variables": sorted(choice.variables), "ms": elapsed_ms},
            )
        )
        return chosen, dict(choice.variables)
