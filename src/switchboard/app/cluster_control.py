"""Live control of a call held by any node, and the cluster's list of live calls.

A control request (``hangup``, ``transfer`` — cold or warm —, ``say``, ``whisper``,
``takeover``, ``handback``) may reach any node. The node holding the
call acts as before; any other node sends a :class:`~switchboard.cluster.ControlCommand`
through the cluster (``Cluster.send_command``: the owner's inbox, a Redis stream read with a
blocking read, so it arrives within milliseconds) and answers with the owner's status
(``cluster_replies``). A call live nowhere is
404; with the shared state unreachable the answer is 503 and says so.

The owner runs each command it receives with :func:`run_command` (installed on the cluster by
:func:`install_cluster_handlers`, with the Telnyx handoff receiver). It notes the operator's
action on the call's timeline, as a local request does.

``GET /v1/sessions`` is :func:`cluster_sessions`: this node's calls in full, the other nodes'
from the call directory, each with its ``node``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi import HTTPException, status

from switchboard.app.cluster_replies import put_reply
from switchboard.app.operator_relay import AUDIO_ACTIONS, serve_remote
from switchboard.app.state import AppState
from switchboard.app.telnyx_resume import MOVE_KIND, receive_move
from switchboard.bridge.control import checked_destination
from switchboard.bridge.manager import CallManager
from switchboard.bridge.operator_control import OperatorConflict
from switchboard.cluster import CallEntry, ControlCommand, Handoff
from switchboard.errors import (
    ClusterUnavailable,
    DialRefused,
    SwitchboardError,
    UnsupportedOperation,
)
from switchboard.telephony.base import TelephonyType

__all__ = [
    "cluster_sessions",
    "install_cluster_handlers",
    "note_on_call",
    "remote_summary",
    "run_command",
    "send_to_owner",
    "status_to_owner",
]

logger = logging.getLogger(__name__)

_STATUS = {"starting": "ringing", "live": "in-progress", "ending": "completed"}
#: The :class:`Handoff` kind of a Twilio status callback for another node's call.
TWILIO_STATUS = "twilio.status"


def note_on_call(calls: object, call_id: str, action: str, entry: dict[str, Any]) -> None:
    """Put ``operator.<action>`` with ``entry`` on the timeline of a call of this node."""
    active = calls.calls.get(call_id) if isinstance(calls, CallManager) else None
    if active is None:
        return
    if active.session is not None:  # through the call's sink chain: record, metrics, live
        active.session.sink.timeline(f"operator.{action}", active.session.now(), entry)
    elif active.sink is not None:
        active.sink.timeline(f"operator.{action}", time.monotonic() * 1000.0, entry)


def install_cluster_handlers(state: AppState) -> None:
    """Run commands for this node's calls, and Telnyx events handed to this node."""
    cluster = state.gateway.cluster
    running: set[asyncio.Task[None]] = set()

    async def on_command(command: ControlCommand) -> None:
        # In a task of its own: a transfer's REST call must not hold up the node's inbox.
        task = asyncio.get_running_loop().create_task(run_command(state, command))
        running.add(task)
        task.add_done_callback(running.discard)

    async def on_handoff(handoff: Handoff) -> None:
        if handoff.kind == TWILIO_STATUS:
            await _apply_status(state, handoff)
        elif handoff.kind == MOVE_KIND:  # a draining node's Telnyx call (app/telnyx_resume.py)
            task = asyncio.get_running_loop().create_task(receive_move(state.telnyx, handoff))
            running.add(task)
            task.add_done_callback(running.discard)
        else:
            await state.telnyx_routing.receive(handoff)

    cluster.on_command(on_command)
    cluster.on_handoff(on_handoff)


async def status_to_owner(state: AppState, sid: str, status: str, details: dict[str, str]) -> None:
    """Apply a Twilio status callback here, or hand it to the node holding the call.

    Raises:
        ClusterUnavailable: the shared state cannot be reached.
    """
    cluster = state.gateway.cluster
    entry = await cluster.directory.find_carrier_call(TelephonyType.TWILIO.value, sid)
    if entry is None or entry.node_id == cluster.node_id or entry.state == "lost":
        await state.calls.update_status(TelephonyType.TWILIO, sid, status, **details)
        return
    body = json.dumps({"sid": sid, "status": status, "details": details})
    await cluster.hand_off(entry.node_id, Handoff(entry.call_id, TWILIO_STATUS, body))


async def _apply_status(state: AppState, handoff: Handoff) -> None:
    try:
        data = json.loads(handoff.body)
        sid, status, details = str(data["sid"]), str(data["status"]), dict(data["details"])
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("unreadable Twilio status handed off by %s: %s", handoff.sender, exc)
        return
    await state.calls.update_status(
        TelephonyType.TWILIO, sid, status, **{str(k): str(v) for k, v in details.items()}
    )


async def run_command(state: AppState, command: ControlCommand) -> None:
    """Carry out ``command`` on a call of this node (logged when it cannot be); the answer of
    an operator action is put where its sender waits for it (``cluster_replies``)."""
    calls, call_id = state.calls, command.call_id
    if not isinstance(calls, CallManager):
        logger.warning("command %s for %s: no call manager here", command.action, call_id)
        await put_reply(state.gateway.cluster, command, 503, "call control is unavailable", {})
        return
    code, detail = 200, ""
    data: dict[str, Any] = {}
    try:
        if command.action in AUDIO_ACTIONS:  # a relayed operator socket
            serve_remote(calls, state.gateway.cluster, command)  # answered 200, or why not
        else:
            data = await _carry_out(calls, command)
    except KeyError:
        code, detail = 404, f"no live call {call_id}"
        logger.info("command %s for %s: the call is no longer live", command.action, call_id)
    except DialRefused as exc:  # checked by the sender too; the owner's dial plan decides
        code, detail = 403, str(exc)
        logger.info("command %s for %s refused: %s", command.action, call_id, exc)
    except (OperatorConflict, UnsupportedOperation) as exc:
        code, detail = 409, str(exc)
        logger.info("command %s for %s refused: %s", command.action, call_id, exc)
    except SwitchboardError as exc:
        code, detail = 502, str(exc)
        logger.warning("command %s for %s failed: %s", command.action, call_id, exc)
    else:
        logger.info(
            "call %s: %s sent by node %s",
            call_id,
            command.action,
            command.sender,
            extra={"call_id": call_id},
        )
    await put_reply(state.gateway.cluster, command, code, detail, data)


async def _carry_out(calls: CallManager, command: ControlCommand) -> dict[str, Any]:
    call_id = command.call_id
    who = {"by": "operator", "via": command.reason or "api", "node": command.sender}
    match command.action:
        case "hangup":
            note_on_call(calls, call_id, "hang_up", who)
            await calls.hang_up(call_id)
        case "transfer":
            note_on_call(calls, call_id, "transfer", {"to": command.destination, **who})
            await calls.transfer(call_id, command.destination)
        case "warm_transfer":  # started here, where the caller's stream is; runs on here
            asked = {"to": command.destination, "mode": "warm", **who}
            note_on_call(calls, call_id, "transfer", asked)
            await calls.transfer(call_id, command.destination, mode="warm")
        case "release":
            if not await calls.hand_over(call_id):
                logger.info("call %s: not released (not here, or bridged)", call_id)
        case "say":  # as a local say: refused while an operator has the call
            await calls.say(call_id, command.text)
            note_on_call(calls, call_id, "say", {"text": command.text, **who})
        case "whisper":
            await calls.whisper(call_id, command.text, respond=command.respond)
            entry = {"text": command.text, "respond": command.respond, **who}
            note_on_call(calls, call_id, "whisper", entry)
        case "takeover":
            await calls.take_over(call_id, "operator")
            note_on_call(calls, call_id, "take_over", who)
        case "handback":
            seconds = round(await calls.hand_back(call_id), 1)
            note_on_call(calls, call_id, "hand_back", {"seconds": seconds, **who})
            return {"seconds": seconds}
    return {}


async def send_to_owner(state: AppState, command: ControlCommand) -> str:
    """Send ``command`` to the node holding its call; that node's id.

    Raises:
        HTTPException: 404 when the call is live nowhere, 503 when the shared state cannot be
            reached.
    """
    try:
        node = await state.gateway.cluster.send_command(command)
    except ClusterUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"call {command.call_id} is not on this node, and the cluster cannot be reached "
            f"to find it: {exc}",
        ) from exc
    if node is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live call {command.call_id}")
    return node


async def remote_destination(state: AppState, call_id: str, destination: str) -> str:
    """``destination`` checked against the dial plan of the agent of another node's call.

    Raises:
        HTTPException: 404 unknown call; 503 shared state unreachable.
        DialRefused: the agent's dial plan does not allow it.
    """
    try:
        entry = await state.gateway.cluster.directory.get(call_id)
    except ClusterUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"call {call_id} is not on this node, and the cluster cannot be reached: {exc}",
        ) from exc
    calls = state.calls
    agent = calls.agents.get(entry.agent) if entry and isinstance(calls, CallManager) else None
    if entry is None or agent is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live call {call_id}")
    return checked_destination(agent.dial_plan, destination, "API transfer", call_id)


def remote_summary(entry: CallEntry) -> dict[str, Any]:
    """What ``GET /v1/sessions`` shows of another node's call (the directory's fields)."""
    return {
        "call_id": entry.call_id,
        "carrier": entry.carrier,
        "carrier_call_id": entry.carrier_call_id,
        "direction": entry.direction,
        "from": entry.from_number,
        "to": entry.to_number,
        "agent": entry.agent,
        "provider": entry.provider,
        "model": None,
        "status": _STATUS.get(entry.state, entry.state),
        "provider_state": None,
        "started_at": entry.started_at,
        "barge_ins": None,
        "turns": None,
        "node": entry.node_id,
        "worker": entry.worker,
    }


async def cluster_sessions(state: AppState, manager: CallManager) -> list[dict[str, Any]]:
    """Every live call of the cluster, oldest first; this node's only when the shared state
    cannot be reached (logged)."""
    gateway = state.gateway
    me = gateway.node_id
    local = [
        {**summary, "node": me, "worker": gateway.status.worker} for summary in manager.sessions()
    ]
    try:
        entries = await gateway.cluster.directory.list_calls()
    except ClusterUnavailable as exc:
        logger.warning("listing this node's calls only: %s", exc)
        return local
    remote = [remote_summary(e) for e in entries if e.node_id != me and e.state != "lost"]
    return sorted(local + remote, key=lambda call: float(call["started_at"]))
