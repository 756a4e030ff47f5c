"""Shared state in one process: the embedded default (no Redis, nothing to install).

:class:`MemoryHub` plays the part Redis plays for a real cluster: several :class:`MemoryState`
handles (one per "node") can share one hub, which is how the shared-state tests run the same
multi-node scenarios against both backends. Every operation completes without yielding to the
event loop between its check and its write, so each is atomic the way a Redis script is.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

from switchboard.cluster.base import (
    Admission,
    CallEntry,
    CallState,
    ClusterMessage,
    NodeInfo,
    SlotRequest,
    check_name,
)
from switchboard.cluster.channels import (
    DEFAULT_READER_MAXLEN,
    ChannelReader,
    memory_publish,
    memory_subscribe,
)

__all__ = ["MemoryHub", "MemoryState"]


class MemoryHub:
    """What a cluster's nodes share, held in this process.

    Args:
        clock: monotonic seconds (injectable so pure tests can move time).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        #: "namespace\x00key" → (claiming node, expiry)
        self.claims: dict[str, tuple[str, float]] = {}
        self._claim_expiry: list[tuple[float, str]] = []
        self.calls: dict[str, CallEntry] = {}
        #: lost call id → when it is forgotten
        self.lost_until: dict[str, float] = {}
        self.carrier_index: dict[tuple[str, str], str] = {}
        #: node id → expiry of its last heartbeat
        self.nodes: dict[str, float] = {}
        #: scope → {(node id, call id): acquired at}
        self.slots: dict[str, dict[tuple[str, str], float]] = {}
        self.inboxes: dict[str, asyncio.Queue[ClusterMessage]] = {}
        self.secrets: dict[str, bytes] = {}
        #: note name → (value, expiry)
        self.notes: dict[str, tuple[str, float]] = {}
        self.notes_kept = 256  # notes left by the last sweep of expired ones (at least 256)
        #: channel name → its readers (``channels.py``)
        self.channels: dict[str, set[ChannelReader]] = {}

    def alive(self, node_id: str, now: float) -> bool:
        """Whether ``node_id``'s last heartbeat still holds at ``now``."""
        expiry = self.nodes.get(node_id)
        return expiry is not None and expiry >= now

    def inbox(self, node_id: str) -> asyncio.Queue[ClusterMessage]:
        """``node_id``'s queue (created on first use: messages may arrive before it starts)."""
        queue = self.inboxes.get(node_id)
        if queue is None:
            queue = self.inboxes[node_id] = asyncio.Queue()
        return queue

    def expire_claims(self, now: float) -> None:
        """Drop claims whose time is up (oldest expiry first)."""
        heap = self._claim_expiry
        while heap and heap[0][0] < now:
            expiry, full_key = heapq.heappop(heap)
            held = self.claims.get(full_key)
            if held is not None and held[1] == expiry:
                del self.claims[full_key]

    def add_claim(self, full_key: str, node_id: str, expiry: float) -> None:
        """Record a claim (the caller checked it was free)."""
        self.claims[full_key] = (node_id, expiry)
        heapq.heappush(self._claim_expiry, (expiry, full_key))

    def forget_lost(self, now: float) -> None:
        """Drop lost calls whose retention is over."""
        for call_id in [cid for cid, until in self.lost_until.items() if until < now]:
            del self.lost_until[call_id]
            entry = self.calls.pop(call_id, None)
            if entry is not None:
                self.unindex(entry)

    def unindex(self, entry: CallEntry) -> None:
        """Drop ``entry``'s carrier index (when it still points at it)."""
        key = (entry.carrier, entry.carrier_call_id)
        if self.carrier_index.get(key) == entry.call_id:
            del self.carrier_index[key]


class _MemoryClaims:
    def __init__(self, hub: MemoryHub, namespace: str, node_id: str) -> None:
        self._hub, self._prefix, self._node = hub, check_name(namespace, "namespace"), node_id

    async def claim(self, key: str, *, ttl_s: float) -> bool:
        hub, now = self._hub, self._hub.clock()
        hub.expire_claims(now)
        full_key = f"{self._prefix}\x00{key}"
        if full_key in hub.claims:
            return False
        hub.add_claim(full_key, self._node, now + ttl_s)
        return True

    async def release(self, key: str) -> None:
        full_key = f"{self._prefix}\x00{key}"
        held = self._hub.claims.get(full_key)
        if held is not None and held[0] == self._node:
            del self._hub.claims[full_key]


class _MemoryDirectory:
    def __init__(self, hub: MemoryHub) -> None:
        self._hub = hub

    async def register(self, entry: CallEntry) -> None:
        hub = self._hub
        old = hub.calls.get(entry.call_id)
        if old is not None:
            hub.unindex(old)
        hub.calls[entry.call_id] = entry
        hub.lost_until.pop(entry.call_id, None)
        hub.carrier_index[(entry.carrier, entry.carrier_call_id)] = entry.call_id

    async def set_state(self, call_id: str, state: CallState) -> bool:
        entry = await self.get(call_id)
        if entry is None:
            return False
        self._hub.calls[call_id] = replace(entry, state=state)
        self._hub.lost_until.pop(call_id, None)
        return True

    async def remove(self, call_id: str, *, node_id: str | None = None) -> None:
        hub = self._hub
        held = hub.calls.get(call_id)
        if node_id is not None and held is not None and held.node_id != node_id:
            return  # another node's entry now
        entry = hub.calls.pop(call_id, None)
        hub.lost_until.pop(call_id, None)
        if entry is not None:
            hub.unindex(entry)

    async def get(self, call_id: str) -> CallEntry | None:
        self._hub.forget_lost(self._hub.clock())
        return self._hub.calls.get(call_id)

    async def find_carrier_call(self, carrier: str, carrier_call_id: str) -> CallEntry | None:
        call_id = self._hub.carrier_index.get((carrier, carrier_call_id))
        return None if call_id is None else await self.get(call_id)

    async def list_calls(self, *, node_id: str | None = None) -> list[CallEntry]:
        self._hub.forget_lost(self._hub.clock())
        calls = self._hub.calls.values()
        chosen = [c for c in calls if node_id is None or c.node_id == node_id]
        return sorted(chosen, key=lambda entry: (entry.started_at, entry.call_id))

    async def heartbeat(self, node_id: str, *, ttl_s: float) -> bool:
        now = self._hub.clock()
        fresh = not self._hub.alive(node_id, now)
        self._hub.nodes[node_id] = now + ttl_s
        return fresh

    async def nodes(self) -> list[NodeInfo]:
        now = self._hub.clock()
        return [
            NodeInfo(node, expiry - now)
            for node, expiry in sorted(self._hub.nodes.items())
            if expiry >= now
        ]

    async def sweep(self, *, retention_s: float) -> list[str]:
        hub, now = self._hub, self._hub.clock()
        dead = {node for node, expiry in hub.nodes.items() if expiry < now}
        for node in dead:
            del hub.nodes[node]
        marked = []
        for entry in list(hub.calls.values()):
            if entry.state != "lost" and entry.node_id in dead:
                hub.calls[entry.call_id] = replace(entry, state="lost")
                hub.lost_until[entry.call_id] = now + retention_s
                marked.append(entry.call_id)
        return sorted(marked)

    async def leave(self, node_id: str) -> None:
        self._hub.nodes[node_id] = float("-inf")


class _MemoryLimits:
    def __init__(self, hub: MemoryHub, node_id: str) -> None:
        self._hub, self._node = hub, node_id

    def _held(self, scope: str) -> dict[tuple[str, str], float]:
        """``scope``'s slots, without those of dead nodes."""
        hub, now = self._hub, self._hub.clock()
        held = hub.slots.setdefault(check_name(scope, "scope"), {})
        for member in [m for m in held if not hub.alive(m[0], now)]:
            del held[member]
        return held

    async def acquire(self, call_id: str, requests: Sequence[SlotRequest]) -> Admission:
        member = (self._node, call_id)
        for request in requests:
            held = self._held(request.scope)
            mine = member in held or any(m[1] == call_id for m in held)  # adopted: swapped
            if not mine and len(held) >= request.limit:
                return Admission(False, request.scope)
        now = self._hub.clock()
        for request in requests:
            held = self._hub.slots[request.scope]
            for other in [m for m in held if m[1] == call_id and m != member]:
                del held[other]  # the call counts once: its slot moves to this node
            held.setdefault(member, now)
        return Admission(True)

    async def release(self, call_id: str, scopes: Sequence[str]) -> None:
        for scope in scopes:
            self._hub.slots.get(scope, {}).pop((self._node, call_id), None)

    async def restore(self, call_id: str, scopes: Sequence[str]) -> None:
        now = self._hub.clock()
        for scope in scopes:
            self._held(scope).setdefault((self._node, call_id), now)

    async def count(self, scope: str) -> int:
        return len(self._held(scope))


class _MemoryInbox:
    def __init__(self, hub: MemoryHub, node_id: str) -> None:
        self._hub, self._node = hub, node_id

    async def post(self, node_id: str, message: ClusterMessage) -> None:
        self._hub.inbox(node_id).put_nowait(message)

    async def receive(self, *, timeout_s: float) -> list[ClusterMessage]:
        queue = self._hub.inbox(self._node)
        try:
            async with asyncio.timeout(timeout_s):
                messages = [await queue.get()]
        except TimeoutError:
            return []
        while not queue.empty():
            messages.append(queue.get_nowait())
        return messages

    async def reset(self) -> None:
        self._hub.inboxes[self._node] = asyncio.Queue()


class MemoryState:
    """One node's :class:`~switchboard.cluster.base.SharedState` on a :class:`MemoryHub`.

    Args:
        node_id: this node.
        hub: what the nodes share; a new one (a cluster of one) when None.
    """

    def __init__(self, node_id: str, *, hub: MemoryHub | None = None) -> None:
        self.node_id = check_name(node_id, "node id")
        self.hub = MemoryHub() if hub is None else hub
        self._directory = _MemoryDirectory(self.hub)
        self._limits = _MemoryLimits(self.hub, self.node_id)
        self._inbox = _MemoryInbox(self.hub, self.node_id)

    @property
    def backend(self) -> str:
        return "memory"

    @property
    def directory(self) -> _MemoryDirectory:
        return self._directory

    @property
    def limits(self) -> _MemoryLimits:
        return self._limits

    @property
    def inbox(self) -> _MemoryInbox:
        return self._inbox

    def claims(self, namespace: str) -> _MemoryClaims:
        return _MemoryClaims(self.hub, namespace, self.node_id)

    async def shared_secret(self, name: str, proposal: bytes) -> bytes:
        return self.hub.secrets.setdefault(name, proposal)

    async def put_note(self, name: str, value: str, *, ttl_s: float) -> None:
        hub, now = self.hub, self.hub.clock()
        if len(hub.notes) >= 2 * hub.notes_kept:  # expired ones go in bulk, not at every put
            for stale in [key for key, (_, until) in hub.notes.items() if until < now]:
                del hub.notes[stale]
            hub.notes_kept = max(256, len(hub.notes))
        hub.notes[name] = (value, now + ttl_s)

    async def get_note(self, name: str) -> str | None:
        held = self.hub.notes.get(name)
        return held[0] if held is not None and held[1] >= self.hub.clock() else None

    async def publish(self, channel: str, data: bytes) -> int:
        return memory_publish(self.hub.channels, channel, data)

    def subscribe(
        self, channel: str, *, maxlen: int = DEFAULT_READER_MAXLEN
    ) -> AbstractAsyncContextManager[ChannelReader]:
        return memory_subscribe(self.hub.channels, channel, maxlen)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
