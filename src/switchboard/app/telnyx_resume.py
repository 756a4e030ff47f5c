"""Telnyx resume: a lost media socket restarts streaming to this node (#17 §2, Telnyx half).

When the media socket of a live Telnyx call dies without our ``streaming_stop`` (the node
holding it was killed, the network cut it), Telnyx keeps the call up and sends
``streaming.stopped``. Whichever node receives it (``app/telnyx_cluster.py`` handles this event
where it lands: the owner may be dead) checks that the call is still up at Telnyx
(``GET /v2/calls/{id}``: a caller hanging up also stops the stream, and then the call is down),
restores the call as a Twilio resume does (:meth:`CallManager.resume
<switchboard.bridge.manager.CallManager.resume>`: same call id and record, the conversation from
the store as history, ``call.resumed`` on the timeline; refused when switchboard ended the call
on purpose, bridge/resume.py) and sends ``streaming_start`` with a fresh media token for a URL
of its own. A draining node hands its Telnyx calls to another node (:func:`move_telnyx_calls`,
a :class:`~switchboard.cluster.Handoff` through the cluster, ``app/cluster_control.py``), which
restores each the same way (:func:`receive_move`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from typing import Any, Protocol

from switchboard.bridge.resume import RESUMABLE_ENDS
from switchboard.errors import ClusterUnavailable, SwitchboardError
from switchboard.gateway import Gateway
from switchboard.telephony.base import (
    CallDirection,
    CallHandler,
    IncomingCall,
    PreparedCall,
    TelephonyType,
)
from switchboard.telephony.telnyx import TelnyxAdapter

__all__ = [
    "MOVE_KIND",
    "StreamRuntime",
    "move_telnyx_calls",
    "note_stream",
    "receive_move",
    "resume_stream",
]

logger = logging.getLogger(__name__)

_TELNYX = TelephonyType.TELNYX
#: The :class:`~switchboard.cluster.Handoff` kind of a Telnyx call moved by a draining node.
MOVE_KIND = "telnyx.move"
#: How long a call's current stream is remembered (longer than any call).
STREAM_MEMORY_S = 24 * 3600.0


def _stream_note(ccid: str) -> str:
    return f"telnyx-stream:{ccid}"


def _stream_key(url: str) -> str:
    """A digest of a stream URL (never the token itself in the shared state)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


async def note_stream(gateway: Gateway, ccid: str, url: str) -> None:
    """Note in the cluster the stream call ``ccid`` now has: a ``streaming.stopped`` of an
    older leg (replaced by a move or a resume) is then not taken for a lost stream."""
    with contextlib.suppress(ClusterUnavailable):  # best effort: the check then passes
        await gateway.cluster.put_note(_stream_note(ccid), _stream_key(url), ttl_s=STREAM_MEMORY_S)


class StreamRuntime(Protocol):
    """What resuming needs of the app's Telnyx runtime (``app/telnyx_control.py``)."""

    gateway: Gateway
    handler: CallHandler
    adapter: TelnyxAdapter | None
    #: call control ids being resumed here now (a move and a streaming.stopped may both come)
    resuming: set[str]

    def remember(self, ccid: str, prepared: PreparedCall, direction: CallDirection) -> Any:
        """Note a prepared call of this node; returns its stream state."""
        ...

    async def start_stream(self, call: Any) -> None:
        """``streaming_start`` to this node for ``call`` (what ``remember`` returned)."""
        ...


async def resume_stream(
    runtime: StreamRuntime,
    ccid: str,
    call_id: str,
    *,
    from_number: str = "",
    to_number: str = "",
    direction: CallDirection = CallDirection.INBOUND,
    stopped_url: str | None = None,
) -> bool:
    """Restore Telnyx call ``ccid`` (our ``call_id``) on this node and restart its stream here;
    ``stopped_url`` is the stream that stopped (an older leg than the call's current one is
    ignored).

    Returns:
        True when the call was restored and its stream restarted; False when there was nothing
        to resume (the call is down, ended on purpose, or live on this node).
    """
    from switchboard.bridge.manager import CallManager

    manager = runtime.handler
    adapter = runtime.adapter
    if not isinstance(manager, CallManager) or adapter is None or ccid in runtime.resuming:
        return False
    if stopped_url and await _replaced(runtime.gateway, ccid, stopped_url):
        return False
    runtime.resuming.add(ccid)
    try:
        numbers = (from_number, to_number)
        return await _resume(runtime, manager, adapter, ccid, call_id, numbers, direction)
    finally:
        runtime.resuming.discard(ccid)


async def _replaced(gateway: Gateway, ccid: str, url: str) -> bool:
    """Whether the stream ``url`` of call ``ccid`` was replaced by a newer one."""
    try:
        current = await gateway.cluster.get_note(_stream_note(ccid))
    except ClusterUnavailable:
        return False
    return current is not None and current != _stream_key(url)


async def _resume(
    runtime: StreamRuntime,
    manager: Any,
    adapter: TelnyxAdapter,
    ccid: str,
    call_id: str,
    numbers: tuple[str, str],
    direction: CallDirection,
) -> bool:
    ended = manager.finished.get(call_id)
    if call_id in manager.calls or ended == "moved":
        return False  # live here (an old leg replaced), or handed to another node
    if ended is not None and ended not in RESUMABLE_ENDS:
        return False  # ended here on purpose: no need to ask Telnyx
    try:
        if not await adapter.call_is_alive(ccid):
            return False  # the caller hung up: that stops the stream too
    except SwitchboardError as exc:
        logger.warning("Telnyx call %s: status unknown, not resumed: %s", ccid, exc)
        return False
    incoming = IncomingCall(
        carrier=_TELNYX,
        carrier_call_id=ccid,
        from_number=numbers[0],
        to_number=numbers[1],
        direction=direction,
        call_id=call_id,
    )
    try:
        prepared = await manager.resume(incoming)
    except ClusterUnavailable as exc:
        logger.error("Telnyx call %s not resumed: %s", call_id, exc, extra={"call_id": call_id})
        return False
    if not prepared.accepted:
        logger.info("Telnyx call %s not resumed: %s", call_id, prepared.reason)
        return False
    call = runtime.remember(ccid, prepared, direction)
    try:
        await runtime.start_stream(call)
    except SwitchboardError as exc:  # the call went down meanwhile
        logger.warning("Telnyx call %s: stream not restarted: %s", call_id, exc)
        await manager.hang_up(call_id)
        return False
    return True


async def move_telnyx_calls(state: Any, manager: Any, call_ids: list[str]) -> set[str]:
    """Drain: hand this node's live Telnyx calls to another live node of the cluster, which
    restarts each stream to itself (:func:`receive_move`); this node's leg ends as ``moved``.
    Returns the ids handed over (none when no other node is alive)."""
    cluster = state.gateway.cluster
    runtime = state.telnyx
    moved: set[str] = set()
    try:
        others = [
            n.node_id for n in await cluster.directory.nodes() if n.node_id != cluster.node_id
        ]
    except ClusterUnavailable as exc:
        logger.warning("drain: Telnyx calls not moved: %s", exc)
        return moved
    if not others:
        return moved
    from switchboard.cluster import Handoff

    for index, call_id in enumerate(call_ids):
        active = manager.calls.get(call_id)
        if active is None or active.ending or active.incoming.carrier is not _TELNYX:
            continue
        incoming = active.incoming
        body = json.dumps(
            {
                "ccid": incoming.carrier_call_id,
                "from": incoming.from_number,
                "to": incoming.to_number,
                "direction": incoming.direction.value,
            }
        )
        known = runtime.calls.get(incoming.carrier_call_id)
        if known is not None:
            known.stopping = True  # its streaming.stopped must not resume it here
        try:
            await cluster.hand_off(others[index % len(others)], Handoff(call_id, MOVE_KIND, body))
        except ClusterUnavailable as exc:  # not moved: the drain cuts it
            logger.warning("drain: call %s not moved: %s", call_id, exc, extra={"call_id": call_id})
            if known is not None:
                known.stopping = False
            continue
        moved.add(call_id)
        if active.session is not None:
            active.session.sink.timeline("call.moving", active.session.now(), {})
            active.session.end("moved")
    return moved


async def receive_move(runtime: StreamRuntime, handoff: Any) -> None:
    """A draining node handed a Telnyx call here: restore it and restart its stream here."""
    try:
        data = json.loads(handoff.body)
        ccid, direction = str(data["ccid"]), CallDirection(str(data["direction"]))
        from_number, to_number = str(data.get("from", "")), str(data.get("to", ""))
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("unreadable Telnyx move from %s: %s", handoff.sender, exc)
        return
    await resume_stream(
        runtime,
        ccid,
        handoff.call_id,
        from_number=from_number,
        to_number=to_number,
        direction=direction,
    )
