"""An operator's audio sockets for a call held by another node, relayed through the cluster.

``WS /v1/calls/{id}/listen`` and ``…/operator`` carry audio only the node holding the call has.
When the socket reaches another node, that node (the *relay*) authorises it exactly as a local
one (the route checked the token before), then:

1. subscribes to the cluster channel ``audio:<stream>:down`` (``stream``: 128 random bits, new
   per socket), so nothing the owner sends is missed;
2. sends the owner a :class:`~switchboard.cluster.ControlCommand` (``listen`` or ``operator``,
   ``text`` the stream) on the control bus and waits for its answer (``cluster_replies``);
   a refusal closes the socket with ``4000 + status`` (4404 gone, 4409 not bridged yet, 4503
   cluster unreachable, 4504 no answer) and the owner's reason;
3. accepts and relays: the owner's frames to the browser, and (``operator``) the browser's
   microphone frames to ``audio:<stream>:up``.

The owner (:func:`serve_remote`) opens the same tap a local socket would (both sides mixed, or
the caller alone) and publishes each 20 ms frame to the down channel from a task of its own, so
the call never waits for Redis or the listener; microphone frames from the up channel go to the
caller as a local operator's do (only while the call is taken over).

Messages are one byte of kind and the payload: ``a`` audio (PCM16 LE mono 16 kHz), ``k``
keep-alive (each second without audio), ``e`` end (with a reason). Bounded everywhere: the
owner's tap, the relay's reader (:data:`RELAY_QUEUE` frames, half a second; a slow browser
loses the oldest) and the owner's microphone reader all drop their oldest. Cleaned up when
either side goes: the relay says ``e`` on the up channel when the browser leaves (and a publish
to a channel nobody reads tells the owner anyway, within :data:`ORPHAN_S`); the owner says ``e``
when the call ends; a relay that hears nothing from the owner for :data:`OWNER_SILENT_S`
(its node died) closes with 4504.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from typing import Literal

from fastapi import HTTPException, WebSocket
from starlette.websockets import WebSocketDisconnect

from switchboard.app.cluster_replies import await_reply
from switchboard.app.state import get_state
from switchboard.bridge.manager import CallManager
from switchboard.bridge.operator import LISTEN_RATE, AudioTap
from switchboard.bridge.operator_control import send_operator_audio
from switchboard.bridge.session import CallSession
from switchboard.cluster import ChannelReader, Cluster, ControlCommand
from switchboard.errors import ClusterUnavailable

__all__ = [
    "AUDIO_ACTIONS",
    "OWNER_SILENT_S",
    "RELAY_QUEUE",
    "SocketKind",
    "relay",
    "serve_remote",
]

logger = logging.getLogger(__name__)

AUDIO_ACTIONS = frozenset({"listen", "operator"})
#: Frames the relay holds for a slow browser before dropping the oldest (~0.5 s).
RELAY_QUEUE = 25
#: The relay closes (4504) after this long without a message from the owner.
OWNER_SILENT_S = 5.0
#: The owner stops when nobody has read its frames for this long (the relay's node died).
ORPHAN_S = 1.0
_KEEPALIVE_S = 1.0

SocketKind = Literal["listen", "operator"]


def _channels(stream: str) -> tuple[str, str]:
    return f"audio:{stream}:down", f"audio:{stream}:up"


# -- the relay: the node the browser's socket reached --------------------------------------------
async def relay(websocket: WebSocket, call_id: str, kind: SocketKind) -> None:
    """Serve an authorised socket for ``call_id``, held by another node (module docstring)."""
    state = get_state(websocket)
    cluster = state.gateway.cluster
    stream = secrets.token_hex(16)
    down, up = _channels(stream)
    await websocket.accept()  # then close with a reason, or relay
    try:
        async with cluster.subscribe(down, maxlen=RELAY_QUEUE) as reader:
            command = ControlCommand(call_id, kind, text=stream)
            try:
                node = await cluster.send_command(command)
                if node is None:
                    raise HTTPException(404, "no live, bridged call with this id")
                await await_reply(state, command, node)
            except HTTPException as exc:
                await websocket.close(4000 + exc.status_code, str(exc.detail)[:120])
                return
            start = {"type": "started", "format": "pcm16", "sample_rate": LISTEN_RATE}
            await websocket.send_text(json.dumps({**start, "node": node}))
            code, reason = await _pump(websocket, cluster, reader, up, mic=kind == "operator")
    except ClusterUnavailable:
        code, reason = 4503, "the cluster cannot be reached"
    with contextlib.suppress(ClusterUnavailable):
        await cluster.publish(up, b"e")  # the owner stops now, not at its next frame
    with contextlib.suppress(Exception):
        await websocket.close(code, reason[:120])


async def _pump(
    websocket: WebSocket, cluster: Cluster, reader: ChannelReader, up: str, *, mic: bool
) -> tuple[int, str]:
    """Relay both ways until one side ends; the close code and reason."""

    async def downward() -> tuple[int, str]:
        quiet_since = time.monotonic()
        while True:
            data = await reader.get(1.0)
            if data is None:
                if time.monotonic() - quiet_since > OWNER_SILENT_S:
                    return 4504, "the node holding the call stopped answering"
                continue
            quiet_since = time.monotonic()
            if data[:1] == b"a":
                await websocket.send_bytes(data[1:])
            elif data[:1] == b"e":
                return 1000, data[1:].decode(errors="replace")

    async def upward() -> tuple[int, str]:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return 1000, ""
            data = message.get("bytes")
            if mic and data:
                await cluster.publish(up, b"a" + data)

    tasks = {asyncio.ensure_future(downward()), asyncio.ensure_future(upward())}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        try:
            return done.pop().result()
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:  # the browser left
            logger.debug("relayed operator socket gone: %r", exc)
            return 1000, ""
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)


# -- the owner: the node holding the call ---------------------------------------------------------
_serving: set[asyncio.Task[None]] = set()


def serve_remote(calls: CallManager, cluster: Cluster, command: ControlCommand) -> None:
    """Start serving a relay's ``listen``/``operator`` socket for a call of this node.

    Raises:
        KeyError: the call is not live here.
        OperatorConflict: its media has not started yet.
    """
    session = calls.bridged(command.call_id)
    kind: SocketKind = "operator" if command.action == "operator" else "listen"
    task = asyncio.get_running_loop().create_task(_serve(cluster, session, command.text, kind))
    _serving.add(task)
    task.add_done_callback(_serving.discard)


async def _serve(cluster: Cluster, session: CallSession, stream: str, kind: SocketKind) -> None:
    down, up = _channels(stream)
    desk = session.operator
    reason = "call ended"
    try:
        with desk.operator_ear() if kind == "operator" else desk.listen() as tap:
            async with cluster.subscribe(up, maxlen=100) as reader:
                upward = asyncio.ensure_future(_from_relay(reader, session, kind == "operator"))
                try:
                    reason = await _to_relay(cluster, down, session, tap, upward)
                finally:
                    upward.cancel()
                    await asyncio.wait({upward})
    except ClusterUnavailable as exc:
        reason = "the cluster cannot be reached"
        logger.warning("call %s: relayed %s socket ended: %s", session.call_id, kind, exc)
    with contextlib.suppress(ClusterUnavailable):
        await cluster.publish(down, b"e" + reason.encode())
    logger.info("call %s: relayed %s socket done (%s)", session.call_id, kind, reason)


async def _to_relay(
    cluster: Cluster, down: str, session: CallSession, tap: AudioTap, upward: asyncio.Future[None]
) -> str:
    """Publish the tap's frames until the call ends or the relay is gone; why it stopped."""
    last_sent = time.monotonic()
    unread_since: float | None = None
    while session.end_reason is None:
        if upward.done():
            return "listener gone"
        data = await tap.get(0.2)
        now = time.monotonic()
        if data:
            message = b"a" + data
        elif now - last_sent >= _KEEPALIVE_S:
            message = b"k"
        else:
            continue
        last_sent = now
        if await cluster.publish(down, message) > 0:
            unread_since = None
        elif unread_since is None:
            unread_since = now
        elif now - unread_since > ORPHAN_S:
            return "listener gone"
    return "call ended"


async def _from_relay(reader: ChannelReader, session: CallSession, mic: bool) -> None:
    """The relay's messages: microphone frames to the caller; returns at ``e``."""
    while True:
        try:
            data = await reader.get()
        except ClusterUnavailable:
            return
        if data is None or data[:1] == b"e":
            return
        if mic and data[:1] == b"a" and not await send_operator_audio(session, data[1:]):
            return
