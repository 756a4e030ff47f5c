"""A live call's audio for an operator: listening in, and speaking when the call is taken over.

* ``WS /v1/calls/{id}/listen`` — both sides of the call mixed, as binary frames of PCM16 LE
  mono at 16 kHz (one per 20 ms of the call), after a JSON
  ``{"type": "started", "format": "pcm16", "sample_rate": 16000}``. Under half a second behind
  the call (``bridge/operator.py``); a listener that reads too slowly loses its oldest audio.
* ``WS /v1/calls/{id}/operator`` — for the operator who took the call over
  (``POST /v1/calls/{id}/takeover``): binary frames of PCM16 LE mono at 16 kHz from the
  microphone go to the caller (only while the call is taken over); the caller's audio alone
  comes back the same way.

Both take the API token in the ``Authorization`` header or ``?token=`` (browsers cannot set a
websocket's headers) and refuse the handshake when it is missing or wrong. A call held by
another node of the cluster is relayed through the cluster (``operator_relay``: the same
protocol, its ``started`` message also names the ``node``; it closes with 4000 + the owner's
status when the owner refuses, 4504 when the owner stops answering). Otherwise the socket is
accepted and then closed, so that the client reads the code and reason: 4503 when the cluster
cannot be reached to find the call, 4404 when the call is not live and bridged anywhere; 1000
when the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from switchboard.app.auth import require_token_ws
from switchboard.app.operator_relay import SocketKind, relay
from switchboard.app.state import get_state
from switchboard.bridge.manager import CallManager
from switchboard.bridge.operator import LISTEN_RATE, AudioTap
from switchboard.bridge.operator_control import OperatorConflict, send_operator_audio
from switchboard.bridge.session import CallSession
from switchboard.errors import ClusterUnavailable

__all__ = ["operator_audio_router"]

logger = logging.getLogger(__name__)

operator_audio_router = APIRouter(prefix="/v1", tags=["calls"])

#: The close code for a call that is not live and bridged here.
NO_CALL = 4404
#: Found on another node (relayed; ``operator_relay`` closes with 4000 + the owner's status).
ELSEWHERE = 4409
#: The close code when the cluster cannot be reached to find the call.
NO_CLUSTER = 4503


async def _open(websocket: WebSocket, call_id: str, kind: SocketKind) -> CallSession | None:
    """Authorise and find the call's session; None when it is not here: another node's call
    is relayed (``operator_relay``) before returning, else the socket is closed."""
    if not await require_token_ws(websocket):
        await websocket.close(1008, "missing or invalid token")
        return None
    calls = get_state(websocket).calls
    try:
        if not isinstance(calls, CallManager):
            raise KeyError(call_id)
        session = calls.bridged(call_id)
    except (KeyError, OperatorConflict):
        code, reason = await _not_here(websocket, call_id)
        if code == ELSEWHERE:
            await relay(websocket, call_id, kind)
            return None
        await websocket.accept()  # then close: a refused handshake carries no reason
        await websocket.close(code, reason)
        return None
    await websocket.accept()
    start = {"type": "started", "format": "pcm16", "sample_rate": LISTEN_RATE}
    await websocket.send_text(json.dumps(start))
    return session


async def _not_here(websocket: WebSocket, call_id: str) -> tuple[int, str]:
    """Why ``call_id``'s audio is not on this node: the close code and reason."""
    cluster = get_state(websocket).gateway.cluster
    try:
        entry = await cluster.directory.get(call_id)
    except ClusterUnavailable:
        return NO_CLUSTER, "not on this node, and the cluster cannot be reached"
    if entry is not None and entry.node_id != cluster.node_id and entry.state != "lost":
        return ELSEWHERE, f"held by node {entry.node_id}"[:120]
    return NO_CALL, "no live, bridged call with this id"


async def _send_tap(websocket: WebSocket, session: CallSession, tap: AudioTap) -> None:
    """Send what ``tap`` gets until the call ends or the client has gone."""
    try:
        while session.end_reason is None:
            data = await tap.get(0.5)
            if data:
                await websocket.send_bytes(data)
    except (WebSocketDisconnect, RuntimeError, OSError) as exc:  # the client left first
        logger.debug("call %s: audio socket gone while sending: %r", session.call_id, exc)


async def _serve(websocket: WebSocket, session: CallSession, tap: AudioTap, *, mic: bool) -> None:
    sender = asyncio.get_running_loop().create_task(_send_tap(websocket, session, tap))
    try:
        while not sender.done():
            receive = asyncio.ensure_future(websocket.receive())
            await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
            if not receive.done():
                receive.cancel()
                break
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if mic and data and not await send_operator_audio(session, data):
                break
    except (WebSocketDisconnect, RuntimeError) as exc:
        logger.info("call %s: operator audio socket ended: %s", session.call_id, exc)
    finally:
        sender.cancel()
        await asyncio.wait({sender})
        with contextlib.suppress(Exception):
            await websocket.close(1000, "call ended" if session.end_reason else "")


@operator_audio_router.websocket("/calls/{call_id}/listen")
async def listen(websocket: WebSocket, call_id: str) -> None:
    """Both sides of a live call, mixed (protocol in the module docstring)."""
    session = await _open(websocket, call_id, "listen")
    if session is None:
        return
    with session.operator.listen() as tap:
        await _serve(websocket, session, tap, mic=False)


@operator_audio_router.websocket("/calls/{call_id}/operator")
async def operator(websocket: WebSocket, call_id: str) -> None:
    """The operator's microphone to the caller, the caller back (module docstring)."""
    session = await _open(websocket, call_id, "operator")
    if session is None:
        return
    with session.operator.operator_ear() as tap:
        await _serve(websocket, session, tap, mic=True)
