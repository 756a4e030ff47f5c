"""Telnyx webhooks in a cluster: each event once, each call's events in order on its owner.

Telnyx may deliver a call's webhooks to any node behind the balancer, and retries deliveries.

* **Once.** An event id is claimed in the cluster (``telnyx-event``) before anything is done
  with it; a copy reaching any node finds the claim and is acknowledged as a duplicate. The
  claim is given back when handling the event fails, so a retry is let through.
* **Owner.** The node holding a call (the call directory's entry for its call control id)
  processes all of its events, one at a time in arrival order (``app/telnyx_control.py``'s
  per-call worker). Before the call is in the directory — its first events, while the webhook
  that prepares it runs — the first node to see the call claims it (``telnyx-call``); another
  node receiving one of its events meanwhile waits briefly for the owner's directory entry.
* **Order.** A node that receives an event of another node's call hands it off
  (:class:`~switchboard.cluster.Handoff`) to the owner's inbox. With Redis the owner queues its
  own events through its inbox too, so an event received directly cannot overtake one handed
  off just before it (a stream keeps the order of its entries). In memory (one process) the
  owner's events are queued at once, as before.
* **Lost streams.** ``streaming.stopped`` is handled where it lands: it may mean the owner died
  (its socket with it), and the node receiving it resumes the call (``app/telnyx_resume.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from switchboard.app.telnyx_control import TelnyxRuntime
from switchboard.cluster import Cluster, Handoff
from switchboard.errors import ClusterUnavailable, RemoteProtocolError
from switchboard.telephony.telnyx.webhooks import TelnyxEvent, parse_event

__all__ = ["HANDOFF_KIND", "TelnyxRouting"]

logger = logging.getLogger(__name__)

#: The :class:`Handoff` kind of a verified Telnyx webhook (its raw JSON body).
HANDOFF_KIND = "telnyx.webhook"
EVENT_CLAIMS, CALL_CLAIMS = "telnyx-event", "telnyx-call"
#: How long an event id is remembered (Telnyx retries for minutes, not hours).
EVENT_MEMORY_S = 3600.0
#: How long a call's first node stays its claimed owner (a day: longer than any call).
CALL_MEMORY_S = 24 * 3600.0
#: How long a node waits for another node's directory entry of a call it claimed.
OWNER_WAIT_S = 2.0
_CLAIMED_BOUND = 10_000


class TelnyxRouting:
    """Routes verified Telnyx events to their call's owner (see the module docstring).

    Args:
        runtime: this node's Telnyx runtime (the per-call ordered workers).
        cluster: the gateway's cluster handle.
    """

    def __init__(self, runtime: TelnyxRuntime, cluster: Cluster) -> None:
        self.runtime = runtime
        self.cluster = cluster
        self._claimed: OrderedDict[str, None] = OrderedDict()  # call control ids we own
        runtime.on_failure = self._failed

    async def accept(self, event: TelnyxEvent, body: bytes) -> bool:
        """Queue ``event`` on its owner; False when it is a copy of one already accepted.

        Raises:
            ClusterUnavailable: the shared state cannot be reached (nothing was queued).
        """
        claims = self.cluster.claims(EVENT_CLAIMS)
        if not await claims.claim(event.id, ttl_s=EVENT_MEMORY_S):
            return False
        try:
            if event.event_type == "streaming.stopped":  # the owner may be dead: resume here
                self.runtime.dispatch(event)
                return True
            owner, call_id = await self._owner(event.call_control_id or "")
            if owner is None or (owner == self.cluster.node_id and self._direct):
                self.runtime.dispatch(event)
            else:  # through the owner's inbox, in order (its own too: see the docstring)
                handoff = Handoff(call_id, HANDOFF_KIND, body.decode(), sender=self.cluster.node_id)
                await self.cluster.state.inbox.post(owner, handoff)
        except BaseException:
            with contextlib.suppress(ClusterUnavailable):
                await claims.release(event.id)  # not handled: Telnyx's retry passes
            raise
        return True

    async def receive(self, handoff: Handoff) -> None:
        """An event handed to this node (by another node, or itself): queue it on its call."""
        if handoff.kind != HANDOFF_KIND:
            logger.warning("handoff of unknown kind %r ignored", handoff.kind[:40])
            return
        try:
            event = parse_event(handoff.body.encode())
        except RemoteProtocolError as exc:  # verified by the sender: a bug, not an attack
            logger.error("unreadable Telnyx event handed off by %s: %s", handoff.sender, exc)
            return
        self.runtime.dispatch(event)

    @property
    def _direct(self) -> bool:
        return self.cluster.backend == "memory"

    async def _owner(self, ccid: str) -> tuple[str | None, str]:
        """(owner node, our call id or the ccid) of call ``ccid``; None: handle it here."""
        me = self.cluster.node_id
        if not ccid:
            return None, ""
        directory = self.cluster.directory
        entry = await directory.find_carrier_call("telnyx", ccid)
        if entry is not None and entry.state != "lost":  # (a call adopted by another node too)
            return entry.node_id, entry.call_id
        if ccid in self._claimed:  # ours, before (or after) its directory entry
            return me, ccid
        if await self.cluster.claims(CALL_CLAIMS).claim(ccid, ttl_s=CALL_MEMORY_S):
            self._claimed[ccid] = None
            if len(self._claimed) > _CLAIMED_BOUND:
                self._claimed.popitem(last=False)
            return me, ccid
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OWNER_WAIT_S
        while loop.time() < deadline:  # the owner is preparing the call: wait for its entry
            await asyncio.sleep(0.02)
            entry = await directory.find_carrier_call("telnyx", ccid)
            if entry is not None and entry.state != "lost":
                return entry.node_id, entry.call_id
        logger.warning("Telnyx call %s: its owner is unknown; handling the event here", ccid)
        return None, ccid

    async def _failed(self, event: TelnyxEvent) -> None:
        with contextlib.suppress(ClusterUnavailable):
            await self.cluster.claims(EVENT_CLAIMS).release(event.id)
