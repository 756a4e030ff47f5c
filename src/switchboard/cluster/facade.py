"""One node's view of the cluster: :class:`Cluster`, built from the settings.

Theory of operation. A node owns the calls whose media it holds. It writes them to the shared
call directory and takes their slots (:class:`SlotLimits`); it keeps its own copy of both, so
when the shared store lost them — Redis restarted empty, or other nodes declared this node dead
during a long pause — the next heartbeat finds the node "fresh" and writes them back. Two tasks
run per node between :meth:`Cluster.start` and :meth:`Cluster.aclose`:

* the keeper: heartbeat every ``heartbeat_s``; sweep every ``sweep_s`` for dead nodes (their
  calls are marked ``lost``, their slots stop counting); restore what was lost;
* the pump: reads the node's inbox and hands each message, in order, to the command or
  handoff handler (one at a time, so a handler that must not block should queue).

Neither task dies of a shared-store outage: each logs it once and retries until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Self

from switchboard.cluster.base import (
    Admission,
    CallDirectory,
    CallEntry,
    CallState,
    Claims,
    ClusterMessage,
    ClusterTiming,
    ControlCommand,
    Handoff,
    SharedState,
    SlotLimits,
    SlotRequest,
)
from switchboard.cluster.channels import DEFAULT_READER_MAXLEN, ChannelReader
from switchboard.cluster.memory import MemoryHub, MemoryState
from switchboard.cluster.owned import OwnedCalls
from switchboard.errors import ClusterUnavailable

if TYPE_CHECKING:
    from switchboard.config import Settings

__all__ = ["MEDIA_KEY_NAME", "Cluster", "CommandHandler", "HandoffHandler", "default_node_id"]

logger = logging.getLogger(__name__)

CommandHandler = Callable[[ControlCommand], Awaitable[None]]
HandoffHandler = Callable[[Handoff], Awaitable[None]]
#: The shared secret holding the media-token key when ``SWITCHBOARD_SIGNING_SECRET`` is unset.
MEDIA_KEY_NAME = "media-token-key"
#: How often the keeper retries while the shared state cannot be reached: when it returns
#: (perhaps empty), this node's calls are written back within this, not a heartbeat later.
OUTAGE_RETRY_S = 0.2
#: How often a node that could not join at start tries again (``Cluster.start(retry=True)``).
JOIN_RETRY_S = 0.5
#: How many recent message ids the pump remembers to drop duplicates (a retried post).
_RECENT = 1024


def default_node_id() -> str:
    """``host-pid-random``: unique per process start, so a restarted node is a new node."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:60].strip("-.") or "node"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class Cluster:
    """This node's handle on the shared state (in memory, or in Redis).

    Args:
        state: the backend, bound to this node (``state.node_id``).
        timing: heartbeat and sweep intervals.
        signing_secret: ``SWITCHBOARD_SIGNING_SECRET``; when None the media-token key is
            bootstrapped once into the shared state, so a cluster needs no extra secret.
    """

    def __init__(
        self,
        state: SharedState,
        *,
        timing: ClusterTiming | None = None,
        signing_secret: str | None = None,
    ) -> None:
        self.node_id = state.node_id
        self.state = state
        self.timing = ClusterTiming() if timing is None else timing
        self._signing_secret = signing_secret
        self._media_key: bytes | None = None
        self._owned = OwnedCalls(state, self.node_id)
        self._on_command: CommandHandler | None = None
        self._on_handoff: HandoffHandler | None = None
        self._recent: deque[str] = deque(maxlen=_RECENT)
        self._tasks: list[asyncio.Task[None]] = []
        self._outage: set[str] = set()
        self._joined = self._joining = False
        self._on_joined: list[Callable[[], None]] = []

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        node_id: str | None = None,
        timing: ClusterTiming | None = None,
        prefix: str = "switchboard",
    ) -> Cluster:
        """Redis when ``SWITCHBOARD_REDIS_URL`` is set, else in memory (a cluster of one)."""
        url = settings.secret("redis_url")
        secret = settings.secret("signing_secret")
        if url:
            return cls.on_redis(url, node_id=node_id, timing=timing, prefix=prefix, secret=secret)
        return cls.in_memory(node_id=node_id, timing=timing, secret=secret)

    @classmethod
    def in_memory(
        cls,
        *,
        node_id: str | None = None,
        hub: MemoryHub | None = None,
        timing: ClusterTiming | None = None,
        secret: str | None = None,
    ) -> Cluster:
        """A node on a :class:`MemoryHub` (pass one hub to several nodes to share it)."""
        node = node_id or default_node_id()
        return cls(MemoryState(node, hub=hub), timing=timing, signing_secret=secret)

    @classmethod
    def on_redis(
        cls,
        url: str,
        *,
        node_id: str | None = None,
        timing: ClusterTiming | None = None,
        prefix: str = "switchboard",
        secret: str | None = None,
    ) -> Cluster:
        """A node whose shared state is in Redis at ``url`` (needs the ``cluster`` extra)."""
        from switchboard.cluster.redis_state import RedisState  # the redis client is optional

        node = node_id or default_node_id()
        timing = ClusterTiming() if timing is None else timing
        state = RedisState(url, node, prefix=prefix, block_s=timing.receive_block_s)
        return cls(state, timing=timing, signing_secret=secret)

    # -- the pieces ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """``memory`` or ``redis``."""
        return self.state.backend

    @property
    def directory(self) -> CallDirectory:
        """The call directory (read it freely; write through :meth:`register_call` & co)."""
        return self.state.directory

    @property
    def limits(self) -> SlotLimits:
        """The slot limits (take slots through :meth:`acquire_slots`)."""
        return self.state.limits

    def claims(self, namespace: str) -> Claims:
        """First-claimer-wins keys of one namespace (``twilio``, ``telnyx-events``...)."""
        return self.state.claims(namespace)

    async def put_note(self, name: str, value: str, *, ttl_s: float) -> None:
        """Keep ``value`` under ``name`` for ``ttl_s``, readable by every node."""
        await self.state.put_note(name, value, ttl_s=ttl_s)

    async def get_note(self, name: str) -> str | None:
        """The note ``name`` any node put, or None (never put, or expired)."""
        return await self.state.get_note(name)

    async def publish(self, channel: str, data: bytes) -> int:
        """Hand ``data`` to whoever subscribes to ``channel`` now; how many did (``channels``)."""
        return await self.state.publish(channel, data)

    def subscribe(
        self, channel: str, *, maxlen: int = DEFAULT_READER_MAXLEN
    ) -> AbstractAsyncContextManager[ChannelReader]:
        """A bounded reader of ``channel`` for the ``async with`` block."""
        return self.state.subscribe(channel, maxlen=maxlen)

    @property
    def media_key(self) -> bytes:
        """The HMAC key of media tokens, the same on every node (after :meth:`start`)."""
        if self._media_key is None:
            raise RuntimeError("Cluster.media_key is known once Cluster.start() has run")
        return self._media_key

    def on_command(self, handler: CommandHandler) -> None:
        """Run ``handler`` for each command sent to a call of this node."""
        self._on_command = handler

    def on_handoff(self, handler: HandoffHandler) -> None:
        """Run ``handler`` for each carrier event handed to this node, in order."""
        self._on_handoff = handler

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, *, retry: bool = False) -> None:
        """Join: media key, empty inbox, first heartbeat; then run the keeper and the pump.

        Args:
            retry: when the shared state does not answer, keep trying in the background
                instead of raising: the node runs but is not :meth:`healthy` (so not ready, and
                it takes no call: :attr:`joining`) until it has joined. A deployment whose Redis
                comes up a moment after the gateways then needs no restart.

        Raises:
            ClusterUnavailable: the shared state does not answer and ``retry`` is false (a node
                does not start blind).
        """
        try:
            await self._join()
        except ClusterUnavailable as exc:
            if not retry:
                raise
            logger.warning(
                "node %s cannot join the cluster state yet (retrying every %.1f s; not ready "
                "until it has): %s",
                self.node_id,
                JOIN_RETRY_S,
                exc,
            )
            self._joining = True
            self._tasks = [
                asyncio.create_task(self._join_later(), name=f"cluster-join-{self.node_id}")
            ]
            return
        self._run()

    @property
    def joining(self) -> bool:
        """Whether :meth:`start` could not join the shared state and is still trying (no
        media-token key, no heartbeat yet): the node must take no call until it has."""
        return self._joining

    def when_joined(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once :meth:`start` has joined (at once if it has)."""
        if self._joined:
            callback()
        else:
            self._on_joined.append(callback)

    async def _join(self) -> None:
        if self._signing_secret:
            self._media_key = self._signing_secret.encode()
        else:
            proposal = secrets.token_bytes(32)
            self._media_key = await self.state.shared_secret(MEDIA_KEY_NAME, proposal)
        await self.state.inbox.reset()
        await self.directory.heartbeat(self.node_id, ttl_s=self.timing.node_ttl_s)

    async def _join_later(self) -> None:
        while True:
            await asyncio.sleep(JOIN_RETRY_S)
            try:
                await self._join()
            except ClusterUnavailable as exc:
                logger.debug("node %s: still cannot join: %s", self.node_id, exc)
                continue
            break
        self._run()  # replaces this task in _tasks (it ends here)

    def _run(self) -> None:
        self._joined, self._joining = True, False
        self._tasks = [
            asyncio.create_task(self._keep(), name=f"cluster-keeper-{self.node_id}"),
            asyncio.create_task(self._pump(), name=f"cluster-pump-{self.node_id}"),
        ]
        logger.info("node %s joined the %s cluster state", self.node_id, self.backend)
        callbacks, self._on_joined = self._on_joined, []
        for callback in callbacks:
            callback()

    async def aclose(self) -> None:
        """Stop the tasks, leave the cluster (best effort) and close connections."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._joining = False
        if self._joined:
            self._joined = False
            try:
                await self.directory.leave(self.node_id)
            except ClusterUnavailable as exc:
                logger.warning("node %s could not leave the cluster: %s", self.node_id, exc)
        await self.state.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def ping(self) -> None:
        """Raise ClusterUnavailable unless the shared state answers (readiness)."""
        await self.state.ping()

    async def healthy(self) -> bool:
        """Whether the shared state answers now and holds this node's calls again: after an
        outage the node is not healthy until its keeper has beaten and written its copy back
        (until then another node would not find its calls)."""
        if self._joining or "heartbeat" in self._outage:
            return False
        try:
            await self.state.ping()
        except ClusterUnavailable:
            return False
        return True

    # -- this node's calls ---------------------------------------------------------------------
    async def register_call(self, entry: CallEntry) -> None:
        """Put a call this node holds in the directory (``entry.node_id`` must be this node's).

        The node keeps a copy and writes it back if the shared state loses it.
        """
        await self._owned.register(entry)

    async def set_call_state(self, call_id: str, state: CallState) -> None:
        """Change the state of a call of this node."""
        await self._owned.set_state(call_id, state)

    async def acquire_slots(self, call_id: str, requests: Sequence[SlotRequest]) -> Admission:
        """Take ``call_id``'s slots (all or none); held until :meth:`finish_call`."""
        return await self._owned.acquire(call_id, requests)

    async def finish_call(self, call_id: str) -> None:
        """The call ended (or was refused): drop it from the directory and free its slots."""
        await self._owned.finish(call_id)

    # -- messages -------------------------------------------------------------------------------
    async def send_command(self, command: ControlCommand) -> str | None:
        """Send ``command`` to the node holding its call.

        Returns:
            That node's id; None when the call is not live anywhere (unknown, lost, or its node
            stopped heart-beating). A call of this node is handled here, before returning.
        """
        entry = await self.directory.get(command.call_id)
        if entry is None or entry.state == "lost":
            return None
        if entry.node_id != self.node_id:  # a silent node not swept yet would never act on it
            alive = {node.node_id for node in await self.directory.nodes()}
            if entry.node_id not in alive:
                return None
        command = command if command.sender else replace(command, sender=self.node_id)
        if entry.node_id == self.node_id:
            await self._dispatch(command)
        else:
            await self.state.inbox.post(entry.node_id, command)
        return entry.node_id

    async def hand_off(self, node_id: str, handoff: Handoff) -> None:
        """Hand a carrier event to ``node_id``; what one node hands off arrives in order."""
        handoff = handoff if handoff.sender else replace(handoff, sender=self.node_id)
        if node_id == self.node_id:
            await self._dispatch(handoff)
        else:
            await self.state.inbox.post(node_id, handoff)

    async def _dispatch(self, message: ClusterMessage) -> None:
        if message.id in self._recent:
            return
        self._recent.append(message.id)
        try:
            if isinstance(message, ControlCommand):
                if self._on_command is None:
                    logger.warning("command %s for %s: no handler", message.action, message.call_id)
                    return
                await self._on_command(message)
            elif self._on_handoff is None:
                logger.warning("%s for %s: no handoff handler", message.kind, message.call_id)
            else:
                await self._on_handoff(message)
        except Exception:
            logger.exception("handling a cluster message for call %s failed", message.call_id)

    # -- the two tasks ----------------------------------------------------------------------------
    async def _keep(self) -> None:
        timing = self.timing
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + timing.sweep_s
        while True:
            pause = min(timing.heartbeat_s, timing.sweep_s)
            if "heartbeat" in self._outage:  # back soon after the store: its calls restored
                pause = min(pause, OUTAGE_RETRY_S)
            await asyncio.sleep(pause)
            try:
                fresh = await self.directory.heartbeat(self.node_id, ttl_s=timing.node_ttl_s)
                if fresh or self._owned.dirty:
                    await self._restore(fresh)
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + timing.sweep_s
                    marked = await self.directory.sweep(retention_s=timing.lost_retention_s)
                    if marked:
                        logger.warning("calls of silent nodes marked lost: %s", ", ".join(marked))
            except ClusterUnavailable as exc:
                self._outage_began("heartbeat", exc)
                continue
            self._outage_ended("heartbeat")

    async def _restore(self, fresh: bool) -> None:
        if fresh:
            logger.warning(
                "node %s was not known to the shared state (restarted, or declared dead): "
                "restoring its %d calls",
                self.node_id,
                len(self._owned),
            )
        if not self._signing_secret and self._media_key is not None:
            stored = await self.state.shared_secret(MEDIA_KEY_NAME, self._media_key)
            if stored != self._media_key:  # another node re-created it first: follow it
                logger.warning("the cluster's media-token key changed; using the stored one")
                self._media_key = stored
        await self._owned.restore()

    async def _pump(self) -> None:
        while True:
            try:
                messages = await self.state.inbox.receive(timeout_s=self.timing.receive_block_s)
            except ClusterUnavailable as exc:
                self._outage_began("inbox", exc)
                await asyncio.sleep(min(1.0, self.timing.heartbeat_s))  # retry shortly
                continue
            self._outage_ended("inbox")
            for message in messages:
                await self._dispatch(message)

    def _outage_began(self, what: str, exc: ClusterUnavailable) -> None:
        if what not in self._outage:  # once per outage, not once per retry
            self._outage.add(what)
            logger.warning("node %s %s: %s", self.node_id, what, exc)

    def _outage_ended(self, what: str) -> None:
        if what in self._outage:
            self._outage.discard(what)
            logger.info("node %s %s: shared state reachable again", self.node_id, what)
