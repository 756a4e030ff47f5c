"""This node's calls' live content for the other nodes' consoles: :class:`LiveForwarder`.

The call directory tells every node that a call started, changed state or ended
(``cluster_live.py``). What it does not carry — transcript lines, partials, timeline entries,
turn latencies, the summary's latency and cost so far — the node holding the call publishes on
the cluster channel :data:`CHANNEL` (Redis pub/sub: kept nowhere, sent only to the nodes
subscribed now, which are those whose event stream someone reads).

Bounded and rate-limited, so a chatty call cannot flood Redis or slow the call:

* the hub hands each event over without waiting (:meth:`LiveForwarder.offer` only queues);
* one message per :data:`FLUSH_S` per node at most, of at most :data:`MAX_BATCH` events, each
  at most :data:`MAX_EVENT_BYTES` encoded (a bigger one — a huge tool result — is dropped);
* partials are coalesced (the latest text of each call and side per flush), and so are a call's
  summary changes (``call.updated``: latency, turns, cost);
* transcript lines, timeline entries and latencies pass a per-call token bucket
  (:data:`CALL_RATE` a second, bursts of :data:`CALL_BURST`); the queue holds at most
  :data:`MAX_PENDING` events, the oldest dropped first; drops are counted (``dropped``);
* when a publish reaches nobody (no other node is watching), events are dropped for
  :data:`IDLE_PROBE_S` before the next try, so an unwatched cluster costs one publish a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from switchboard.cluster import Cluster
from switchboard.errors import ClusterUnavailable
from switchboard.live import LiveHub
from switchboard.live.hub import LiveEvent

__all__ = [
    "CALL_BURST",
    "CALL_RATE",
    "CHANNEL",
    "FLUSH_S",
    "IDLE_PROBE_S",
    "MAX_BATCH",
    "MAX_EVENT_BYTES",
    "MAX_PENDING",
    "SHARED_TYPES",
    "LiveForwarder",
]

logger = logging.getLogger(__name__)

#: The cluster channel of live call events.
CHANNEL = "live"
#: The events shared (``call.started``/``ended`` travel through the call directory).
SHARED_TYPES = frozenset(
    {"transcript", "transcript.partial", "timeline", "turn.latency", "call.updated"}
)
FLUSH_S = 0.1
MAX_BATCH = 100
MAX_EVENT_BYTES = 16_384
MAX_PENDING = 500
CALL_RATE = 20.0
CALL_BURST = 40.0
IDLE_PROBE_S = 1.0


class LiveForwarder:
    """Publishes this node's calls' events for the other nodes (module docstring).

    Args:
        cluster: this node's cluster handle.
        hub: this node's live hub (the forwarder installs itself as its ``forward``).
        is_local: whether a call id is held by this node (events of other nodes' calls, which
            this node's hub shows too, are not sent back).
    """

    def __init__(self, cluster: Cluster, hub: LiveHub, is_local: Callable[[str], bool]) -> None:
        self.cluster = cluster
        self.hub = hub
        self.is_local = is_local
        self.dropped = 0
        self.published = 0  # messages sent
        self._pending: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING)
        self._partials: dict[tuple[str, str], dict[str, Any]] = {}
        self._updates: dict[str, dict[str, Any]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # call id -> (tokens, at)
        self._idle_until = 0.0
        self._down = False
        hub.forward = self.offer

    def offer(self, event: LiveEvent) -> None:
        """Queue ``event`` if it is to be shared (never waits)."""
        call_id = event.call_id
        if event.type == "call.ended":
            self._buckets.pop(call_id, None)
            return
        if event.type not in SHARED_TYPES or not self.is_local(call_id):
            return
        now = time.monotonic()
        if now < self._idle_until:  # nobody on another node watches
            return
        data = dict(event.data)
        if event.type == "transcript.partial":
            self._partials[(call_id, str(data.get("role")))] = data
            return
        if event.type == "call.updated":
            self._updates.setdefault(call_id, {}).update(data)
            return
        if not self._take(call_id, now):
            self.dropped += 1
            return
        if event.type == "transcript":  # the line is final: its partial is stale
            self._partials.pop((call_id, str(data.get("role"))), None)
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append({"type": event.type, "call_id": call_id, "data": data})

    def _take(self, call_id: str, now: float) -> bool:
        tokens, at = self._buckets.get(call_id, (CALL_BURST, now))
        tokens = min(CALL_BURST, tokens + (now - at) * CALL_RATE)
        if tokens < 1.0:
            self._buckets[call_id] = (tokens, now)
            return False
        self._buckets[call_id] = (tokens - 1.0, now)
        return True

    def batch(self) -> list[str]:
        """The next message's events, encoded (and taken off the queues)."""
        events: list[dict[str, Any]] = []
        while self._pending and len(events) < MAX_BATCH:
            events.append(self._pending.popleft())
        for (call_id, _), data in self._partials.items():
            events.append({"type": "transcript.partial", "call_id": call_id, "data": data})
        for call_id, changes in self._updates.items():
            events.append({"type": "call.updated", "call_id": call_id, "data": changes})
        self._partials, self._updates = {}, {}
        encoded = []
        for event in events:
            text = json.dumps(event, separators=(",", ":"), default=str)
            if len(text) > MAX_EVENT_BYTES:
                self.dropped += 1
                continue
            encoded.append(text)
        return encoded

    async def flush(self) -> None:
        """Publish what is queued (one message)."""
        events = self.batch()
        if not events:
            return
        node, joined = json.dumps(self.cluster.node_id), ",".join(events)
        body = f'{{"node":{node},"events":[{joined}]}}'
        try:
            receivers = await self.cluster.publish(CHANNEL, body.encode())
        except ClusterUnavailable as exc:
            if not self._down:
                logger.warning("live events not shared with the other nodes: %s", exc)
            self._down = True
            return
        self._down = False
        self.published += 1
        if receivers == 0:
            self._idle_until = time.monotonic() + IDLE_PROBE_S

    async def run(self, flush_s: float = FLUSH_S) -> None:
        """Flush every ``flush_s`` until cancelled."""
        try:
            while True:
                await asyncio.sleep(flush_s)
                try:
                    await self.flush()
                except Exception:  # never let the sharing die of one bad event
                    logger.exception("sharing live events failed")
        finally:
            if self.hub.forward == self.offer:
                self.hub.forward = None
