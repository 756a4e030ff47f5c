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
of its own. A drained node hands its Telnyx calls over the same way (:func:`restart_stream`
through the cluster control bus, ``app/cluster_control.py``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from switchboard.errors import ClusterUnavailable, SwitchboardError
from switchboard.telephony.base import (
    CallDirection,
    CallHandler,
    IncomingCall,
    PreparedCall,
    TelephonyType,
)
from switchboard.telephony.telnyx import TelnyxAdapter

__all__ = ["StreamRuntime", "resume_stream"]

logger = logging.getLogger(__name__)

_TELNYX = TelephonyType.TELNYX


class StreamRuntime(Protocol):
    """What resuming needs of the app's Telnyx runtime (``app/telnyx_control.py``)."""

    handler: CallHandler
    adapter: TelnyxAdapter | None

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
) -> bool:
    """Restore Telnyx call ``ccid`` (our ``call_id``) on this node and restart its stream here.

    Returns:
        True when the call was restored and its stream restarted; False when there was nothing
        to resume (the call is down, ended on purpose, or live on this node).
    """
    from switchboard.bridge.manager import CallManager

    manager = runtime.handler
    adapter = runtime.adapter
    if not isinstance(manager, CallManager) or adapter is None:
        return False
    if call_id in manager.calls or manager.finished.get(call_id) == "moved":
        return False  # live here (an old leg replaced), or handed to another node
    try:
        if not await adapter.call_is_alive(ccid):
            return False  # the caller hung up: that stops the stream too
    except SwitchboardError as exc:
        logger.warning("Telnyx call %s: status unknown, not resumed: %s", ccid, exc)
        return False
    incoming = IncomingCall(
        carrier=_TELNYX,
        carrier_call_id=ccid,
        from_number=from_number,
        to_number=to_number,
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
