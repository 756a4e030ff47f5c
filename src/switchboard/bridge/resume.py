"""Resume a call whose media leg died without switchboard ending it (#17 §2).

A Twilio call's TwiML carries ``<Connect action="{public}/twilio/resume?call_id=…">``: when
the stream ends while the call is still up (the node holding it crashed, or the network cut
the socket), Twilio requests that URL and whichever node the balancer picks answers it. That
node restores the call — same call id and record, the agent it was routed to (the route note
every prepared call leaves in the cluster, else the dialled number's agent again), and the
conversation so far read back from the call's transcript in the (shared) database — and
answers a new ``<Connect><Stream>`` to itself. The new provider session starts with that
conversation as history (``SessionConfig.history``) and says :data:`RESUME_LINE` so the
caller hears the agent again at once.

A call switchboard ended on purpose (hung up, transferred, drained, ...) is never resumed:
its end is noted in the cluster (:func:`note_end`, a note read by every node) and the resume
request is answered ``<Hangup/>``. Ends that are not a decision of ours — the media socket
closing under the call, the process shutting down — leave the call resumable.
"""

from __future__ import annotations

import logging

from switchboard.cluster import Cluster
from switchboard.errors import ClusterUnavailable, SwitchboardError
from switchboard.providers.types import HistoryTurn
from switchboard.store import CallStore

__all__ = ["RESUMABLE_ENDS", "RESUME_LINE", "conversation_of", "ended_on_purpose", "note_end"]

logger = logging.getLogger(__name__)

#: What the agent says first on the resumed leg (the caller heard silence meanwhile).
RESUME_LINE = "Sorry, the line dropped for a moment. I am back."
#: End reasons that are not switchboard's decision: the call may be resumed after them.
RESUMABLE_ENDS = frozenset({"caller_hangup", "shutdown", "internal_error", "moved"})
#: How long a call's deliberate end is remembered (Twilio's longest call is 24 h; its action
#: request follows the stream's end within seconds).
END_MEMORY_S = 3600.0
#: Transcript roles → the history's roles.
_ROLES = {"agent": "assistant", "assistant": "assistant", "caller": "user", "user": "user"}


def _note(call_id: str) -> str:
    return f"ended:{call_id}"


async def note_end(cluster: Cluster, call_id: str, reason: str) -> None:
    """Note in the cluster that ``call_id`` ended for ``reason`` when that was switchboard's
    decision (best effort: while Redis is unreachable the node's own memory still answers)."""
    if reason in RESUMABLE_ENDS:
        return
    try:
        await cluster.put_note(_note(call_id), reason, ttl_s=END_MEMORY_S)
    except ClusterUnavailable as exc:
        logger.warning("call %s: end not shared: %s", call_id, exc, extra={"call_id": call_id})


async def ended_on_purpose(cluster: Cluster, call_id: str) -> str | None:
    """The reason ``call_id`` was ended on purpose, on any node; None when it was not.

    Raises:
        ClusterUnavailable: the shared state cannot be reached (the caller answers 503 and
            Twilio retries, rather than resuming a call that may have been ended).
    """
    return await cluster.get_note(_note(call_id))


async def conversation_of(store: CallStore | None, call_id: str) -> list[HistoryTurn]:
    """The call's conversation so far, oldest first, from its transcript (what was heard:
    an agent line cut at a barge-in is stored cut); empty without a store or a record."""
    if store is None:
        return []
    try:
        detail = await store.get_call(call_id)
    except SwitchboardError as exc:
        logger.warning("call %s: transcript unreadable, resumed without it: %s", call_id, exc)
        return []
    if detail is None:
        return []
    return [
        HistoryTurn(_ROLES[entry.role], entry.text)
        for entry in detail.transcript
        if entry.role in _ROLES and entry.text.strip()
    ]
