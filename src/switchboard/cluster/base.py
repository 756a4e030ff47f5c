"""Shared state between switchboard nodes: the protocols (pure; records in ``records.py``).

Every piece of live state that several nodes must agree on is one of the protocols below, each
with two implementations: in memory (``memory.py``, the embedded default: one process, nothing
to install) and in Redis (``redis_state.py``, ``redis_inbox.py``). ``facade.Cluster`` holds one
node's set of them. What each piece is for, and where it lives in Redis, is in docs/cluster.md.

* :class:`Claims` — claim a key before doing the work, first claimer wins (Twilio replays,
  Telnyx event ids).
* :class:`CallDirectory` — which node holds each live call, and the nodes' heartbeats.
* :class:`SlotLimits` — concurrent-call slots (per agent, per node) that die with their node.
* :class:`NodeInbox` — one ordered queue per node, carrying :class:`ControlCommand` and
  :class:`Handoff` messages, JSON on the wire (:func:`encode_message`, :func:`decode_message`).
* channels (``channels.py``) — messages to whoever subscribes now, kept nowhere (live events,
  an operator's audio across nodes).
* :class:`SharedState` — one node's handle on all of the above for one backend.

Failures of the shared store raise :class:`~switchboard.errors.ClusterUnavailable`, never the
client library's own exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from switchboard.cluster.channels import ChannelReader
from switchboard.cluster.records import (
    Admission,
    CallEntry,
    CallState,
    ClusterMessage,
    ClusterTiming,
    CommandAction,
    ControlCommand,
    Handoff,
    NodeInfo,
    SlotRequest,
    check_name,
    decode_message,
    encode_message,
)

__all__ = [
    "Admission",
    "CallDirectory",
    "CallEntry",
    "CallState",
    "Claims",
    "ClusterMessage",
    "ClusterTiming",
    "CommandAction",
    "ControlCommand",
    "Handoff",
    "NodeInbox",
    "NodeInfo",
    "SharedState",
    "SlotLimits",
    "SlotRequest",
    "check_name",
    "decode_message",
    "encode_message",
]


class Claims(Protocol):
    """Claim a key before doing the work it guards; the first claimer wins.

    One namespace of keys (``SharedState.claims(namespace)``). A claim lasts ``ttl_s``;
    :meth:`release` gives it up early, so a retry of work that failed is let through.
    """

    async def claim(self, key: str, *, ttl_s: float) -> bool:
        """True only for the first claimer of ``key`` within ``ttl_s`` (atomic across nodes)."""
        ...

    async def release(self, key: str) -> None:
        """Drop this node's claim of ``key`` (another node's claim is left alone)."""
        ...


class CallDirectory(Protocol):
    """Where every live call is, and which nodes are alive (heartbeats).

    Writes are idempotent, so a node can re-register its calls after the store lost them.
    """

    async def register(self, entry: CallEntry) -> None:
        """Add or replace ``entry`` (found by call id and by carrier call id)."""
        ...

    async def set_state(self, call_id: str, state: CallState) -> bool:
        """Change a call's state; False when the call is not in the directory."""
        ...

    async def remove(self, call_id: str, *, node_id: str | None = None) -> None:
        """Forget a call that ended (no error when it is already gone). With ``node_id``, only
        while its entry names that node: a node removing its own entry late (a slow node letting
        go of a call it had prepared) must not remove the one another node has registered since."""
        ...

    async def get(self, call_id: str) -> CallEntry | None:
        """The entry of ``call_id``, or None."""
        ...

    async def find_carrier_call(self, carrier: str, carrier_call_id: str) -> CallEntry | None:
        """The entry whose carrier and carrier call id match, or None."""
        ...

    async def list_calls(self, *, node_id: str | None = None) -> list[CallEntry]:
        """Every call in the directory (lost ones too), or one node's, oldest first."""
        ...

    async def heartbeat(self, node_id: str, *, ttl_s: float) -> bool:
        """Keep ``node_id`` alive for ``ttl_s``; True when it was not alive before (new, or
        declared dead meanwhile), i.e. its calls and slots may have to be restored."""
        ...

    async def nodes(self) -> list[NodeInfo]:
        """The nodes alive now."""
        ...

    async def sweep(self, *, retention_s: float) -> list[str]:
        """Mark every call of a dead node ``lost`` (kept ``retention_s``); the ids marked."""
        ...

    async def leave(self, node_id: str) -> None:
        """``node_id`` stops heart-beating on purpose: it is dead from now on, and the next
        :meth:`sweep` marks whatever calls it still has."""
        ...


class SlotLimits(Protocol):
    """Concurrent-call slots shared by the cluster; a dead node's slots are freed."""

    async def acquire(self, call_id: str, requests: Sequence[SlotRequest]) -> Admission:
        """Take one slot in every requested scope for ``call_id``, all or none (atomic).

        Taking a slot the call already holds succeeds without taking another. A call counts
        once per scope: a slot another node holds for ``call_id`` (a call this node adopts)
        becomes this node's in the same step, so no other call can take it in between.
        """
        ...

    async def release(self, call_id: str, scopes: Sequence[str]) -> None:
        """Give back ``call_id``'s slots in ``scopes`` (missing ones are ignored)."""
        ...

    async def restore(self, call_id: str, scopes: Sequence[str]) -> None:
        """Put back slots this node holds after the store lost them, ignoring the limits."""
        ...

    async def count(self, scope: str) -> int:
        """Slots held in ``scope`` by nodes that are alive."""
        ...


class NodeInbox(Protocol):
    """One ordered queue per node: what one sender posts arrives in the order it was posted."""

    async def post(self, node_id: str, message: ClusterMessage) -> None:
        """Append ``message`` to ``node_id``'s inbox."""
        ...

    async def receive(self, *, timeout_s: float) -> list[ClusterMessage]:
        """The next messages of this node's inbox, in order; [] after ``timeout_s`` of none."""
        ...

    async def reset(self) -> None:
        """Empty this node's inbox (a node starting under an id must not act on old messages)."""
        ...


class SharedState(Protocol):
    """One node's handle on one backend (``memory`` or ``redis``)."""

    @property
    def node_id(self) -> str:
        """The node this handle belongs to."""
        ...

    @property
    def backend(self) -> str:
        """``memory`` or ``redis``."""
        ...

    @property
    def directory(self) -> CallDirectory: ...

    @property
    def limits(self) -> SlotLimits: ...

    @property
    def inbox(self) -> NodeInbox: ...

    def claims(self, namespace: str) -> Claims:
        """The claims of one namespace (``twilio``, ``telnyx-events``...)."""
        ...

    async def shared_secret(self, name: str, proposal: bytes) -> bytes:
        """The cluster's secret ``name``: the one stored, or ``proposal`` if there was none."""
        ...

    async def put_note(self, name: str, value: str, *, ttl_s: float) -> None:
        """Keep ``value`` under ``name`` for ``ttl_s``, readable by every node (replaces)."""
        ...

    async def get_note(self, name: str) -> str | None:
        """The note ``name``, or None (never written, or expired)."""
        ...

    async def publish(self, channel: str, data: bytes) -> int:
        """Hand ``data`` to every current subscriber of ``channel``; how many there were
        (nothing is kept: ``channels.py``)."""
        ...

    def subscribe(
        self, channel: str, *, maxlen: int = ...
    ) -> AbstractAsyncContextManager[ChannelReader]:
        """A bounded reader of ``channel`` for the ``async with`` block (subscribed when the
        block begins, so a message published after that reaches it)."""
        ...

    async def ping(self) -> None:
        """Raise ClusterUnavailable unless the backend answers."""
        ...

    async def aclose(self) -> None:
        """Close connections (idempotent)."""
        ...
