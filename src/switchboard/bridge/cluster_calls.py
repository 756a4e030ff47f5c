"""This node's calls in the cluster: admission by shared slots, the call directory, placements.

The call manager asks :class:`ClusterAdmission` before it opens anything for a call: one slot
of ``node:<node id>`` (``SWITCHBOARD_MAX_CALLS``) and one of ``agent:<name>`` (the agent's
``limits.max_concurrent_calls``), taken together or not at all through the gateway's
:class:`~switchboard.cluster.Cluster` — in this process's memory by default, in Redis for a
cluster, where the agent's limit then holds across every node. A refused call is *busy* at the
carrier (bridge/admission.py).

:class:`CallDirectoryWriter` keeps the call directory in step with the manager: each call is
registered when it is taken (``starting``), marked ``live`` when its media is bridged, and
finished at its end (which also frees its slots). While the shared state is unreachable the
call goes on: the failure is logged once per call and the cluster writes its copy back when
the state returns (docs/cluster.md#failure-of-redis).

An outbound call's agent and variables (:class:`~switchboard.bridge.planner.Placement`) are
put where every node can read them (:func:`share_placement`), so the node that receives its
webhook — any node of the cluster — answers with the agent it was placed with. Every call's
route is kept the same way when it is prepared (:func:`remember_route`).

**Adoption.** A call's media socket may reach another node than the one that answered its
webhook (a balancer spreads them). That node finds the call ``starting`` on another node in the
directory (:func:`prepared_elsewhere`), asks that node to let it go (a ``release`` command: it
drops the prepared call, its provider session and slots, keeping its record) and waits until
the directory no longer lists it there (:func:`release_elsewhere`); then it prepares the call
itself — the same call id, agent and variables — and bridges it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from switchboard.agents import AgentBook
from switchboard.bridge.active import ActiveCall
from switchboard.bridge.planner import Placement
from switchboard.cluster import CallEntry, CallState, Cluster, ControlCommand, SlotRequest
from switchboard.errors import ClusterUnavailable
from switchboard.gateway import Gateway
from switchboard.telephony.amd import MachineDetection

__all__ = [
    "PLACEMENT_TTL_S",
    "CallDirectoryWriter",
    "ClusterAdmission",
    "placed_call",
    "prepared_elsewhere",
    "release_elsewhere",
    "remember_route",
    "share_placement",
]

logger = logging.getLogger(__name__)

#: How long a placed call's agent and variables wait for its webhook (then the call is
#: answered as an unplaced outbound call would be).
PLACEMENT_TTL_S = 600.0
#: How long a node adopting a call waits for the node that prepared it to let it go.
RELEASE_WAIT_S = 2.0


class ClusterAdmission:
    """Admission through the cluster's slots (see the module docstring).

    Args:
        cluster: the gateway's cluster handle.
        max_calls: ``SWITCHBOARD_MAX_CALLS`` (0: no node limit).
        agents: the agent book, for each agent's ``limits.max_concurrent_calls``.
        draining: True while the node takes no new call (``Gateway.draining``).
    """

    def __init__(
        self,
        cluster: Cluster,
        *,
        max_calls: int,
        agents: AgentBook,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        if max_calls < 0:
            raise ValueError("max_calls must be 0 (no limit) or more")
        self.cluster = cluster
        self.max_calls = max_calls
        self.agents = agents
        self.draining = draining

    def requests(self, agent: str) -> list[SlotRequest]:
        """The slots a call of ``agent`` takes."""
        wanted: list[SlotRequest] = []
        if self.max_calls:
            wanted.append(SlotRequest(f"node:{self.cluster.node_id}", self.max_calls))
        profile = self.agents.get(agent)
        limit = profile.limits.max_concurrent_calls if profile is not None else None
        if limit:
            wanted.append(SlotRequest(f"agent:{agent}", limit))
        return wanted

    async def admit(self, call_id: str, *, agent: str) -> str | None:
        """None when admitted (slots held until :meth:`release`), else why not."""
        if self.draining():
            return "this node is draining"
        if self.cluster.joining:  # Redis unreachable since the start: no key, no counts
            return "the cluster's shared state cannot be reached"
        wanted = self.requests(agent)
        if not wanted:
            return None
        try:
            admission = await self.cluster.acquire_slots(call_id, wanted)
        except ClusterUnavailable as exc:  # no way to count: refuse rather than overrun
            logger.error("call %s refused: %s", call_id, exc, extra={"call_id": call_id})
            return "the cluster's shared state cannot be reached"
        if admission.granted:
            return None
        if admission.full_scope.startswith("agent:"):
            limit = next(r.limit for r in wanted if r.scope == admission.full_scope)
            return f"agent {agent} is at its limit of {limit} concurrent calls"
        return f"this node is at its limit of {self.max_calls} concurrent calls"

    async def release(self, call_id: str) -> None:
        """Give the call's slots back (and its directory entry: the call is over)."""
        try:
            await self.cluster.finish_call(call_id)
        except ClusterUnavailable as exc:  # retried by the cluster when the state is back
            logger.warning("call %s: slots not freed yet: %s", call_id, exc)


class CallDirectoryWriter:
    """Writes this node's calls to the cluster's call directory (module docstring).

    Args:
        gateway: the app's services (the cluster, and this node's worker name).
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    @property
    def cluster(self) -> Cluster:
        return self.gateway.cluster

    async def register(self, active: ActiveCall) -> None:
        """The call is taken by this node (``starting``)."""
        incoming = active.incoming
        entry = CallEntry(
            call_id=active.call_id,
            node_id=self.cluster.node_id,
            carrier=incoming.carrier.value,
            carrier_call_id=incoming.carrier_call_id,
            agent=active.agent.name,
            provider=active.provider_name,
            started_at=active.created_at,
            worker=self.gateway.status.worker,
            direction=incoming.direction.value,
            from_number=incoming.from_number,
            to_number=incoming.to_number,
        )
        await self._write(active.call_id, "register", self.cluster.register_call(entry))

    async def set_state(self, call_id: str, state: CallState) -> None:
        """The call's state changed (``live`` once bridged, ``ending``)."""
        await self._write(call_id, state, self.cluster.set_call_state(call_id, state))

    async def finish(self, call_id: str) -> None:
        """The call ended: out of the directory, its slots freed."""
        await self._write(call_id, "finish", self.cluster.finish_call(call_id))

    async def _write(self, call_id: str, what: str, operation: Awaitable[None]) -> None:
        try:
            await operation
        except ClusterUnavailable as exc:  # the call goes on; the cluster restores its copy
            logger.warning(
                "call %s: call directory %s deferred: %s",
                call_id,
                what,
                exc,
                extra={"call_id": call_id},
            )


def _note(call_id: str) -> str:
    return f"placement:{call_id}"


async def share_placement(cluster: Cluster, call_id: str, placement: Placement) -> None:
    """Let every node read ``call_id``'s agent and variables until it is answered.

    Raises:
        ClusterUnavailable: the shared state cannot be reached (the call is not placed).
    """
    doc: dict[str, Any] = {"agent": placement.agent, "variables": placement.variables}
    if (md := placement.machine_detection) is not None:  # AMD is acted on where it is answered
        doc["machine_detection"] = {"policy": md.policy, "message": md.message}
    value = json.dumps(doc)
    await cluster.put_note(_note(call_id), value, ttl_s=PLACEMENT_TTL_S)


async def placed_call(cluster: Cluster, call_id: str) -> Placement | None:
    """The agent and variables ``call_id`` was placed with on any node, or None."""
    try:
        raw = await cluster.get_note(_note(call_id))
    except ClusterUnavailable as exc:
        logger.warning("call %s: placement unreadable: %s", call_id, exc)
        return None
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        agent, variables = data["agent"], data["variables"]
        if not isinstance(agent, str) or not isinstance(variables, dict):
            raise TypeError("agent or variables of the wrong type")
        md = data.get("machine_detection")
        detection = (
            MachineDetection(md["policy"], md.get("message")) if isinstance(md, dict) else None
        )
        return Placement(agent, {str(k): str(v) for k, v in variables.items()}, detection)
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("call %s: malformed placement ignored: %s", call_id, exc)
        return None


async def remember_route(cluster: Cluster, call_id: str, placement: Placement) -> None:
    """Keep a prepared call's agent and variables for a node that may adopt it (best effort:
    without them an adopting node routes the call by its number)."""
    try:
        await share_placement(cluster, call_id, placement)
    except ClusterUnavailable as exc:
        logger.warning("call %s: route not shared: %s", call_id, exc)


async def prepared_elsewhere(cluster: Cluster, call_id: str) -> CallEntry | None:
    """The directory entry of ``call_id`` when another live node prepared it and has not
    bridged it yet (a call this node may adopt), else None."""
    try:
        entry = await cluster.directory.get(call_id)
    except ClusterUnavailable as exc:
        logger.warning("call %s: cannot look for it in the cluster: %s", call_id, exc)
        return None
    if entry is None or entry.node_id == cluster.node_id or entry.state != "starting":
        return None
    return entry


async def release_elsewhere(cluster: Cluster, entry: CallEntry) -> bool:
    """Ask ``entry``'s node to let its prepared call go; True once it did (within
    :data:`RELEASE_WAIT_S`)."""
    call_id = entry.call_id
    try:
        if await cluster.send_command(ControlCommand(call_id, "release")) is None:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RELEASE_WAIT_S
        while loop.time() < deadline:
            now = await cluster.directory.get(call_id)
            if now is None or now.node_id != entry.node_id:
                return True
            await asyncio.sleep(0.01)
    except ClusterUnavailable as exc:
        logger.warning("call %s: cannot take it over: %s", call_id, exc)
        return False
    logger.warning("call %s: node %s did not let it go", call_id, entry.node_id)
    return False
