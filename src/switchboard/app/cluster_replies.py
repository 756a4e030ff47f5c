"""The owner's answer to an operator command sent across the cluster.

``hangup``, ``transfer``, ``say``, ``whisper``, ``takeover``, ``handback`` (and the relayed
audio sockets' ``listen`` and ``operator``) on another node's call can be refused by that node
(404: it ended meanwhile; 403: a transfer its dial plan refuses; 409: say during a take-over,
hand back a call nobody took over...; 502: the carrier refused). The owner
writes its answer as a short-lived cluster note named after the command's id
(:func:`put_reply`); the node that took the request sent the command (``send_to_owner``) and
waits for it (:func:`await_reply`, at most
:data:`REPLY_WAIT_S`) and answers the API client with the owner's status. A reply that does
not come in time is a 504 that says the command may still be carried out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import HTTPException, status

from switchboard.app.state import AppState
from switchboard.cluster import Cluster, ControlCommand
from switchboard.errors import ClusterUnavailable

__all__ = ["REPLIED", "REPLY_WAIT_S", "await_reply", "put_reply"]

logger = logging.getLogger(__name__)

#: The actions whose sender waits for the owner's answer.
REPLIED = frozenset(
    {
        "hangup",
        "transfer",
        "warm_transfer",
        "say",
        "whisper",
        "takeover",
        "handback",
        "listen",
        "operator",
    }
)
#: How long the sender waits for the owner's answer.
REPLY_WAIT_S = 3.0
#: How long an answer is kept (a sender that gave up never reads it).
_REPLY_TTL_S = 30.0
_POLL_S = 0.01


def _note(command_id: str) -> str:
    return f"reply:{command_id}"


async def put_reply(
    cluster: Cluster, command: ControlCommand, code: int, detail: str, data: dict[str, Any]
) -> None:
    """The owner's answer to ``command`` (only for :data:`REPLIED` actions; best effort)."""
    if command.action not in REPLIED:
        return
    value = json.dumps({"status": code, "detail": detail, "data": data})
    try:
        await cluster.put_note(_note(command.id), value, ttl_s=_REPLY_TTL_S)
    except ClusterUnavailable as exc:
        logger.warning("call %s: %s answer lost: %s", command.call_id, command.action, exc)


async def await_reply(state: AppState, command: ControlCommand, node: str) -> dict[str, Any]:
    """Wait for the answer of ``node``, to which ``command`` was sent.

    Returns:
        The owner's data (e.g. ``seconds`` of a hand-back) with ``node``: the owner's id.

    Raises:
        HTTPException: 404 gone when the command arrived, 409 refused by the owner, 503 the
            shared state cannot be reached, 504 no answer in :data:`REPLY_WAIT_S`.
    """
    cluster = state.gateway.cluster
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPLY_WAIT_S
    while loop.time() < deadline:
        try:
            raw = await cluster.get_note(_note(command.id))
        except ClusterUnavailable as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"{command.action} sent to node {node}; its answer cannot be read: {exc}",
            ) from exc
        if raw is not None:
            answer = json.loads(raw)
            code = int(answer.get("status", 500))
            if code >= 400:
                raise HTTPException(code, f"node {node}: {answer.get('detail', '')}")
            return {**dict(answer.get("data") or {}), "node": node}
        await asyncio.sleep(_POLL_S)
    raise HTTPException(
        status.HTTP_504_GATEWAY_TIMEOUT,
        f"{command.action} sent to node {node}, which did not answer within "
        f"{REPLY_WAIT_S:g} s; it may still be carried out",
    )
