"""Other nodes' live calls on this node's event stream (``GET /v1/events``).

The console's "Live calls" shows what this node's :class:`~switchboard.live.LiveHub` knows.
With several nodes, :class:`RemoteCallFeed` adds the calls the others hold: every
:data:`POLL_S` it reads the cluster's call directory (one read, bounded by the number of live
calls) and publishes ``call.started`` for a call another node took, ``call.updated`` when its
state changes (``status``) and ``call.ended`` when it is no longer listed — each summary with
the ``node`` holding the call. A poll, not a message stream, because it cannot lose an event:
a node that restarts, or Redis that blips, is caught up by the next read.

The content of another node's call (transcript lines and partials, timeline, turn latencies,
the summary's latency and cost so far) comes from the owner's :class:`LiveForwarder`
(``cluster_live_out.py``) on the cluster channel ``live``: while someone reads this node's
stream and other nodes are alive, the feed subscribes to it (:meth:`RemoteCallFeed.receive`)
and publishes each event of a call it shows into the hub, as if it were local (an event of a
call the poll has not seen yet starts it from the directory first). What was said before the
subscription is not replayed (docs/console.md#the-cluster).

The directory is read only while someone subscribes to the stream (a node nobody watches
costs Redis nothing); a new subscriber's ``snapshot`` may lack the other nodes' calls for up
to :data:`POLL_S`, after which they come as ``call.started``. On one node the directory lists
only this node's calls, so nothing is published: the
embedded default's stream is unchanged. While the shared state cannot be reached the remote
calls are kept as they were (logged once) until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from switchboard.app.cluster_control import remote_summary
from switchboard.app.cluster_live_out import CHANNEL, SHARED_TYPES
from switchboard.app.state import AppState
from switchboard.bridge.manager import CallManager
from switchboard.cluster import Cluster
from switchboard.errors import ClusterUnavailable
from switchboard.live import LiveHub

__all__ = ["POLL_S", "RemoteCallFeed"]

logger = logging.getLogger(__name__)

#: How often the call directory is read for other nodes' calls.
POLL_S = 1.0


class RemoteCallFeed:
    """Publishes other nodes' live calls into this node's hub (module docstring).

    Args:
        cluster: this node's cluster handle.
        hub: this node's live hub.
        is_local: whether a call id is held here now (an adopted call is the manager's).
        poll_s: seconds between reads.
    """

    def __init__(
        self,
        cluster: Cluster,
        hub: LiveHub,
        is_local: Callable[[str], bool],
        *,
        poll_s: float = POLL_S,
    ) -> None:
        self.cluster = cluster
        self.hub = hub
        self.is_local = is_local
        self.poll_s = poll_s
        self.known: dict[str, dict[str, Any]] = {}  # remote call id -> its last summary
        self.others = False  # whether other nodes are alive (at the last poll)
        self.received = 0  # events of other nodes' calls published into the hub
        self._down = False
        self._receiver: asyncio.Task[None] | None = None

    @classmethod
    def for_app(cls, state: AppState) -> RemoteCallFeed:
        """The feed of the app whose state is ``state``."""
        calls = state.calls

        def is_local(call_id: str) -> bool:
            return isinstance(calls, CallManager) and call_id in calls.calls

        return cls(state.gateway.cluster, state.gateway.live, is_local)

    async def poll(self) -> None:
        """Read the directory once and publish what changed."""
        try:
            entries = await self.cluster.directory.list_calls()
        except ClusterUnavailable as exc:
            if not self._down:
                logger.warning("other nodes' live calls not refreshed: %s", exc)
            self._down = True
            return
        self._down = False
        me = self.cluster.node_id
        with contextlib.suppress(ClusterUnavailable):  # else as it was: the next poll tells
            self.others = any(n.node_id != me for n in await self.cluster.directory.nodes())
        current = {
            e.call_id: remote_summary(e)
            for e in entries
            if e.node_id != me and e.state != "lost" and not self.is_local(e.call_id)
        }
        for call_id in [c for c in self.known if c not in current]:
            del self.known[call_id]
            if not self.is_local(call_id):  # adopted by this node: the manager has it now
                self.hub.ended(call_id, "ended_on_other_node")
        for call_id, summary in current.items():
            before = self.known.get(call_id)
            if before is None:
                self.hub.started(call_id, summary)
            elif before["status"] != summary["status"] or before["node"] != summary["node"]:
                self.hub.updated(call_id, status=summary["status"], node=summary["node"])
            self.known[call_id] = summary

    def forget(self) -> None:
        """Drop the other nodes' calls from the hub (nobody is watching)."""
        for call_id in list(self.known):
            del self.known[call_id]
            if not self.is_local(call_id):
                self.hub.ended(call_id, "ended_on_other_node")

    async def receive(self) -> None:
        """Publish the other nodes' events of their calls into the hub, until cancelled."""
        async with self.cluster.subscribe(CHANNEL, maxlen=1024) as reader:
            while True:
                data = await reader.get()
                if data is not None:
                    await self.apply(data)

    async def apply(self, data: bytes) -> None:
        """Publish the events of one message of another node (see the module docstring)."""
        try:
            message = json.loads(data)
            node, events = str(message["node"]), list(message["events"])
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("dropping an unreadable live message: %s", exc)
            return
        if node == self.cluster.node_id:
            return
        for event in events:
            if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
                continue
            kind, call_id = event.get("type"), str(event.get("call_id"))
            if kind not in SHARED_TYPES or self.is_local(call_id):
                continue
            if call_id not in self.known and not await self._discover(call_id):
                continue
            if kind == "call.updated":
                changes = {k: v for k, v in event["data"].items() if k not in ("node", "status")}
                self.hub.updated(call_id, **changes)
            else:
                self.hub.publish(kind, call_id, event["data"])
            self.received += 1

    async def _discover(self, call_id: str) -> bool:
        """Start showing ``call_id`` (from the directory) before the next poll would."""
        try:
            entry = await self.cluster.directory.get(call_id)
        except ClusterUnavailable:
            return False
        if entry is None or entry.state == "lost" or entry.node_id == self.cluster.node_id:
            return False
        summary = remote_summary(entry)
        self.known[call_id] = summary
        self.hub.started(call_id, summary)
        return True

    def _receiving(self, wanted: bool) -> None:
        """Start or stop :meth:`receive` (restarted when it died of an outage)."""
        task = self._receiver
        if task is not None and task.done():
            with contextlib.suppress(asyncio.CancelledError):
                if (exc := task.exception()) is not None:
                    logger.warning("other nodes' live events: %s (subscribing again)", exc)
            task = self._receiver = None
        if wanted and task is None:
            self._receiver = asyncio.get_running_loop().create_task(self.receive())
        elif not wanted and task is not None:
            task.cancel()
            self._receiver = None

    async def run(self) -> None:
        """Poll until cancelled; only while someone reads the event stream."""
        try:
            while True:
                try:
                    if self.hub.subscribers:
                        await self.poll()
                        self._receiving(self.others)
                    else:
                        self._receiving(False)
                        self.forget()
                except Exception:  # never let the console's feed die of one bad read
                    logger.exception("reading other nodes' live calls failed")
                await asyncio.sleep(self.poll_s)
        finally:
            if self._receiver is not None:
                self._receiver.cancel()
                await asyncio.wait({self._receiver})
