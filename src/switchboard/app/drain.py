"""Drain on deploy: what ``switchboard serve`` does between SIGTERM and its exit.

SIGTERM marks the node draining at once (:meth:`Gateway.drain`: ``/readyz`` answers 503 and
no new call is admitted) while the server keeps serving: webhooks in flight finish and live
calls run on. When the last call ends, or ``SWITCHBOARD_DRAIN_SECONDS`` after the signal,
the calls still live are handed to ``move`` (a node of a cluster moves them to another
node) and whatever is left is ended cleanly (hung up at the carrier, the record finalised);
how many were cut is logged and printed. Then uvicorn shuts down as usual and the process
exits 0. A second SIGTERM or SIGINT stops at once (uvicorn's own shutdown).

uvicorn re-raises the signals it caught once it has shut down (so the process dies *of* the
signal); a drained node exits 0 instead, which is what a deploy expects of a clean stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from switchboard.app.telnyx_resume import move_telnyx_calls
from switchboard.app.twilio import resume_url
from switchboard.errors import SwitchboardError
from switchboard.runtime import IdleCollector, freeze_startup_objects
from switchboard.telephony.base import TelephonyType
from switchboard.telephony.twilio.rest import TwilioAdapter

if TYPE_CHECKING:
    from switchboard.app.state import AppState
    from switchboard.bridge.manager import CallManager
    from switchboard.gateway import Gateway

__all__ = [
    "DrainReport",
    "DrainingServer",
    "GatewayServer",
    "drain_app",
    "drain_calls",
    "move_twilio_calls",
]

logger = logging.getLogger(__name__)

#: Moves the calls still live at the deadline elsewhere; returns the ids it moved.
CallMover = Callable[[list[str]], Awaitable[set[str]]]


@dataclass(frozen=True, slots=True)
class DrainReport:
    """How a drain went.

    Attributes:
        waited_s: seconds from the signal until the calls ended or the deadline.
        ended: calls that ended by themselves meanwhile.
        moved: calls moved to another node at the deadline.
        cut: calls this node had to end at the deadline.
    """

    waited_s: float
    ended: int
    moved: int
    cut: int


async def drain_calls(
    gateway: Gateway,
    manager: CallManager,
    deadline_s: float,
    *,
    move: CallMover | None = None,
) -> DrainReport:
    """Mark the node draining, wait up to ``deadline_s`` for its calls to end, then move
    (``move``) or end the rest."""
    gateway.drain()
    started = time.monotonic()
    before = len(manager.calls)
    await manager.wait_idle(deadline_s)
    waited = time.monotonic() - started
    left = [call_id for call_id, active in manager.calls.items() if not active.ending]
    moved: set[str] = set()
    if left and move is not None:
        try:
            moved = await move(left)
        except Exception:  # the calls are then ended below, never left hanging
            logger.exception("drain: moving %d call(s) failed", len(left))
        left = [
            call_id
            for call_id, active in manager.calls.items()
            if not active.ending and call_id not in moved
        ]
    for call_id in left:
        await cut_call(manager, call_id)
    if left or moved:
        await manager.wait_idle(5.0)
    report = DrainReport(waited, max(0, before - len(left) - len(moved)), len(moved), len(left))
    message = (
        f"drain of node {gateway.node_id}: {report.ended} call(s) ended by themselves, "
        f"{report.moved} moved, {report.cut} cut after {report.waited_s:.1f} s"
    )
    (logger.warning if report.cut else logger.info)("%s", message)
    print(message, file=sys.stderr)
    return report


async def cut_call(manager: CallManager, call_id: str) -> None:
    """End a live call at the drain's deadline: hung up at the carrier, reason ``drained``."""
    active = manager.calls.get(call_id)
    if active is None:
        return
    session = active.session
    try:
        if session is not None:
            now = session.now()
            await session.apply(session.core.request_hang_up("drained", now, cut=True))
        else:
            await manager.hang_up(call_id)
    except Exception:  # one call failing to hang up must not keep the others on
        logger.exception("drain: call %s did not hang up", call_id, extra={"call_id": call_id})
        if session is not None:
            session.end("drained")


async def move_twilio_calls(
    gateway: Gateway, manager: CallManager, call_ids: list[str]
) -> set[str]:
    """Move live Twilio calls to another node: each live call is updated through Twilio's REST
    API to fetch the resume URL (``Url=``), which the balancer sends to a ready node; that node
    restores the call (bridge/resume.py). This node's leg ends as ``moved``. Returns the ids
    moved; a call whose update failed stays (it is cut). Other carriers are not moved yet."""
    adapter = gateway.carriers.get(TelephonyType.TWILIO)
    moved: set[str] = set()
    if not isinstance(adapter, TwilioAdapter):
        return moved
    for call_id in call_ids:
        active = manager.calls.get(call_id)
        if active is None or active.ending or active.incoming.carrier is not TelephonyType.TWILIO:
            continue
        try:
            await adapter.update_call(
                active.incoming.carrier_call_id, Url=resume_url(gateway.settings, call_id)
            )
        except SwitchboardError as exc:
            logger.warning("drain: call %s not moved: %s", call_id, exc, extra={"call_id": call_id})
            continue
        moved.add(call_id)
        if active.session is not None:
            active.session.sink.timeline("call.moving", active.session.now(), {})
            active.session.end("moved")
    return moved


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining on the first SIGTERM (module docstring).

    Args:
        config: uvicorn's configuration.
        drain: run on the first SIGTERM (e.g. :func:`drain_calls` bound to the app); the
            server exits once it returns.
    """

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(config)
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[Any] | None = None
        self._drain_asked = False

    async def serve(self, sockets: Any = None) -> None:
        """Serve until stopped (uvicorn's), knowing the loop the signal handler posts to."""
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First SIGTERM: drain, then stop. Anything else (or SIGTERM again): stop now."""
        loop = self._loop
        if sig == signal.SIGTERM and not self._drain_asked and loop is not None:
            self._drain_asked = True
            loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:  # exit with our status, not by re-raising the signal
            self._captured_signals.remove(sig)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.get_running_loop().create_task(self._run_drain())

    async def _run_drain(self) -> None:
        try:
            await self._drain()
        except Exception:
            logger.exception("drain failed; stopping")
        finally:
            self.should_exit = True


class GatewayServer(DrainingServer):
    """The server ``switchboard serve`` runs (each worker too): draining on SIGTERM, with
    start-up objects frozen out of the garbage collector's walks once the app has started
    (``runtime.freeze_startup_objects``: no full-collection pauses under calls, #22.7) and one
    collection whenever it goes idle (``runtime.IdleCollector``)."""

    _idle_gc = IdleCollector()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        frozen = freeze_startup_objects()
        logger.debug("froze %d start-up objects out of the garbage collector's walks", frozen)

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:  # uvicorn ticks every 0.1 s
            # in-flight requests and WebSocket handlers, not open connections: a monitoring
            # client's keep-alive connection would keep an idle server "busy" for ever
            self._idle_gc.tick(len(self.server_state.tasks))
        return await super().on_tick(counter)


async def drain_app(state: AppState) -> None:
    """Drain this app's calls on SIGTERM (``SWITCHBOARD_DRAIN_SECONDS``): with a shared cluster
    the calls left at the deadline move to another node (Twilio through its REST API, Telnyx
    through the cluster: app/telnyx_resume.py), else they are ended cleanly."""
    from switchboard.bridge.manager import CallManager

    gateway = state.gateway
    if not isinstance(state.calls, CallManager):  # a custom handler: nothing of ours to drain
        gateway.drain()
        return
    manager = state.calls
    shared = gateway.cluster.backend != "memory"  # other nodes can take the calls over

    async def move(call_ids: list[str]) -> set[str]:
        moved = await move_twilio_calls(gateway, manager, call_ids)
        rest = [call_id for call_id in call_ids if call_id not in moved]
        return moved | await move_telnyx_calls(state, manager, rest)

    await drain_calls(
        gateway, manager, gateway.settings.drain_seconds, move=move if shared else None
    )
