"""A live call's media moving to the next stream of the same call: Twilio's digits.

Twilio plays DTMF into a call only by redirecting it (``<Play digits>``, then ``<Redirect>``
back to our voice webhook, which answers ``<Connect><Stream>`` again), and a redirect stops
the call's media stream. The call, its provider session, its conversation and its record go
on: only the carrier socket changes. :class:`StreamSplice` is where the two streams meet:

1. ``send_digits`` (:class:`SplicingControl`) waits until the agent has finished what it was
   saying, says a new stream is expected (:meth:`StreamSplice.expect`), then asks the carrier
   for the redirect;
2. the old stream stops; the session's carrier loop, instead of ending the call, waits for the
   next one (:meth:`StreamSplice.next_stream`);
3. Twilio fetches the voice webhook (``?resume=``): the call's node sees the call expecting a
   stream (:attr:`StreamSplice.expecting`) and answers ``<Connect><Stream>`` with the same
   call id and a new media token;
4. the new socket's ``start`` reaches the media route, which hands it over
   (:meth:`StreamSplice.offer`) and keeps the socket open until the session lets it go;
5. the carrier loop goes on with it; ``send_digits`` returns once it has (the model's next
   words go to the new stream).

No new stream within ``wait_s`` (the caller hung up meanwhile, the webhook went elsewhere):
the call ends as a caller hang-up would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from switchboard.bridge.actions import Action
from switchboard.bridge.carrier import CarrierControl, CarrierLink
from switchboard.bridge.core import BridgeCore
from switchboard.bridge.sink import CallSink
from switchboard.errors import TelephonyError
from switchboard.telephony.base import MediaCodec, MediaSocket, StreamStarted

__all__ = ["NextStream", "SplicingControl", "StreamSplice", "agent_quiet", "take_next_stream"]

#: How long the call waits for the carrier's next stream (the digits play first, ~0.1 s each
#: and 0.5 s a ``w``; then a webhook and a websocket).
WAIT_S = 20.0


@dataclass(slots=True)
class NextStream:
    """A new media stream of the call, handed to its session.

    Attributes:
        codec: the stream's codec (it has read ``start``).
        socket: the stream's socket.
        started: its ``start``.
        released: set once the session no longer uses the socket (the media route that
            accepted it returns then, which closes it).
    """

    codec: MediaCodec
    socket: MediaSocket
    started: StreamStarted
    released: asyncio.Event = field(default_factory=asyncio.Event)


class StreamSplice:
    """One call's stream hand-overs (see the module docstring)."""

    def __init__(self, *, wait_s: float = WAIT_S) -> None:
        self.wait_s = wait_s
        self._next: asyncio.Future[NextStream] | None = None
        self._attached: asyncio.Event | None = None
        #: the stream the session uses now, when it is not the first
        self.current: NextStream | None = None
        #: how many times the call moved to a new stream
        self.moves = 0

    @property
    def expecting(self) -> bool:
        """A new stream is expected and has not come yet (the webhook and media route ask)."""
        return self._next is not None and not self._next.done()

    @property
    def moving(self) -> bool:
        """The call is between streams: one is expected, or has come and is not taken yet
        (the new socket's ``start`` may be handed over before the old ``stop`` is read)."""
        return self._next is not None

    def expect(self) -> None:
        """A redirect is about to stop the stream: the next one belongs to this call."""
        self._next = asyncio.get_running_loop().create_future()
        self._attached = asyncio.Event()

    def cancel(self) -> None:
        """No new stream is coming after all (the redirect was refused)."""
        if self._next is not None and not self._next.done():
            self._next.cancel()
        self._next = None

    def offer(self, stream: NextStream) -> bool:
        """The media route's new stream of this call; False when none is expected."""
        if not self.expecting:
            return False
        assert self._next is not None
        self._next.set_result(stream)
        return True

    async def next_stream(self) -> NextStream | None:
        """The next stream (the old one has stopped), or None when none came in time."""
        waiting = self._next
        if waiting is None:
            return None
        try:
            stream = await asyncio.wait_for(asyncio.shield(waiting), self.wait_s)
        except TimeoutError:
            self.cancel()
            return None
        except asyncio.CancelledError:
            if not waiting.cancelled():
                raise  # this task itself is cancelled (the call is ending)
            return None  # cancel(): no stream is coming
        self._next = None
        if self.current is not None:
            self.current.released.set()
        self.current = stream
        self.moves += 1
        return stream

    def attached(self) -> None:
        """The session goes on with the new stream."""
        if self._attached is not None:
            self._attached.set()

    async def wait_attached(self) -> None:
        """Until the session goes on with the new stream.

        Raises:
            TelephonyError: it did not within ``wait_s``.
        """
        attached = self._attached
        if attached is None:
            return
        try:
            await asyncio.wait_for(attached.wait(), self.wait_s)
        except TimeoutError:
            raise TelephonyError("the call's media stream did not come back") from None

    def close(self) -> None:
        """The call ended: let the current socket (and one offered, not taken) go, expect
        nothing more."""
        offered = self._next
        if offered is not None and offered.done() and not offered.cancelled():
            offered.result().released.set()
        self.cancel()
        if self.current is not None:
            self.current.released.set()
        if self._attached is not None:
            self._attached.set()


class SplicingControl:
    """A Twilio call's :class:`CarrierControl` whose ``send_dtmf`` moves the call's session
    to the stream that follows the digits (hang-up and transfer unchanged).

    Args:
        inner: the carrier's control for the call.
        splice: the call's splice.
        quiet: waits until the agent has finished what it is saying (the redirect would cut it).
    """

    def __init__(
        self,
        inner: CarrierControl,
        splice: StreamSplice,
        *,
        quiet: Callable[[], Awaitable[None]],
    ) -> None:
        self.inner, self.splice, self._quiet = inner, splice, quiet

    async def hang_up(self) -> None:
        await self.inner.hang_up()

    async def transfer(self, destination: str) -> None:
        await self.inner.transfer(destination)

    async def send_dtmf(self, digits: str) -> None:
        """Play ``digits`` to the far end; returns once the call's media goes on.

        Raises:
            TelephonyError: the carrier refused, or the stream did not come back.
        """
        if self.splice.moving:
            raise TelephonyError("digits are already being sent")
        await self._quiet()
        self.splice.expect()
        try:
            await self.inner.send_dtmf(digits)
        except BaseException:
            self.splice.cancel()
            raise
        await self.splice.wait_attached()


class SplicedSession(Protocol):
    """What :func:`take_next_stream` needs of the call (``CallSession`` provides it)."""

    splice: StreamSplice | None
    codec: MediaCodec
    socket: MediaSocket

    @property
    def carrier(self) -> CarrierLink: ...

    @property
    def core(self) -> BridgeCore: ...

    @property
    def sink(self) -> CallSink: ...

    def now(self) -> float: ...

    async def apply(self, actions: list[Action]) -> None: ...


async def take_next_stream(session: SplicedSession) -> bool:
    """The call's stream has ended: go on with the next one if one is expected and comes
    (True), else False (the call is over)."""
    splice = session.splice
    if splice is None or not splice.moving:
        return False
    stopped = session.now()
    stream = await splice.next_stream()
    if stream is None:
        return False
    session.codec = session.carrier.codec = stream.codec
    session.socket = session.carrier.socket = stream.socket
    # Marks sent on the old stream are never echoed: what they covered was played or cut by
    # the redirect (the agent was quiet when it was asked for, so usually there are none).
    await session.apply(session.core.stream_replaced(session.now()))
    gap_ms = round(session.now() - stopped)
    session.sink.timeline(
        "media.resumed", session.now(), {"gap_ms": gap_ms, "streams": splice.moves + 1}
    )
    splice.attached()
    return True


async def agent_quiet(core: BridgeCore, now: Callable[[], float], limit_ms: float = 8000.0) -> None:
    """Until the agent has finished what it is saying (at most ``limit_ms``)."""
    end = now() + limit_ms
    # agent_speaking is worked out from the clock (what has played), not signalled
    while core.agent_speaking(now()) and now() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
