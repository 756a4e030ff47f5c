"""Starlette's websocket behind the bridge's own :class:`~switchboard.telephony.base.MediaSocket`.

The bridge knows no web framework: it reads and writes a carrier's media socket through the
small ``MediaSocket`` interface and learns that the caller is gone from
:class:`~switchboard.errors.CallerDisconnected`. This adapter is where Starlette's own signals
of a gone peer are translated: ``WebSocketDisconnect`` (the client closed, or the connection
dropped mid-send) and ``RuntimeError`` (Starlette's ``WebSocketDisconnected``: the socket was
already closed on our side).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from switchboard.errors import CallerDisconnected

__all__ = ["StarletteMediaSocket"]


class StarletteMediaSocket:
    """A :class:`~switchboard.telephony.base.MediaSocket` over an accepted Starlette websocket.

    ``idle_timeout_s`` is watched by one timer per socket that looks at the time of the last
    frame, not by a timeout around every receive: ``asyncio.timeout`` per 20 ms frame was a
    timer scheduled and cancelled 50 times a second per call (~5 % of a core at 100 calls, and
    the cancelled timers' memory). When the timer finds the socket silent for the whole timeout
    while the call waits on it, it cancels that wait, which :meth:`receive_text` turns into
    :class:`CallerDisconnected` — the way ``asyncio.timeout`` does it (``Task.uncancel``), so a
    cancellation of the call itself still propagates.
    """

    def __init__(self, websocket: WebSocket, *, idle_timeout_s: float | None = None) -> None:
        self.websocket = websocket
        self.idle_timeout_s = idle_timeout_s
        self._last_frame = 0.0  # loop time of the last frame received
        self._waiting: asyncio.Task[object] | None = None  # the task in receive_text, if any
        self._watchdog: asyncio.TimerHandle | None = None
        self._expired = False

    async def receive_text(self) -> str:
        """The next text frame.

        Raises:
            CallerDisconnected: the socket closed, or nothing arrived for ``idle_timeout_s``:
                carriers stream the caller's audio without a break (silence included), so a
                socket that goes quiet is half-open (the peer vanished without a FIN) and the
                call is over, whether or not TCP ever says so.
        """
        if self._expired:
            raise self._silent()
        if self.idle_timeout_s is None:
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self._watchdog is None:
            self._last_frame = loop.time()
            self._watchdog = loop.call_at(self._last_frame + self.idle_timeout_s, self._watch)
        task = asyncio.current_task()
        self._waiting = task
        try:
            text = await self._receive()
            if self._gave_up():  # the frame came as the watchdog cancelled: take the cancel here
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            if self._gave_up() and task is not None and task.uncancel() == 0:
                raise self._silent() from None  # our cancel, and nobody else's
            raise
        finally:
            self._waiting = None
        self._last_frame = loop.time()
        return text

    async def _receive(self) -> str:
        try:
            return await self.websocket.receive_text()
        except (WebSocketDisconnect, WebSocketDisconnected) as exc:
            self._stop_watching()
            raise CallerDisconnected("the carrier's media socket is closed") from exc

    def _gave_up(self) -> bool:
        """Whether the watchdog cancelled the wait (a method: it changes across an await)."""
        return self._expired

    def _stop_watching(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _watch(self) -> None:
        assert self.idle_timeout_s is not None
        loop = asyncio.get_running_loop()
        due = self._last_frame + self.idle_timeout_s
        waiting = self._waiting
        if loop.time() < due or waiting is None:  # a frame came since, or the call is busy
            # (busy: it looks again a timeout later; the frame read next moves the due time)
            self._watchdog = loop.call_at(max(due, loop.time() + self.idle_timeout_s), self._watch)
            return
        self._watchdog = None
        self._expired = True
        waiting.cancel()

    def _silent(self) -> CallerDisconnected:
        return CallerDisconnected(
            f"no frame from the carrier for {self.idle_timeout_s:g} s: the socket is half-open"
        )

    async def send_text(self, data: str) -> None:
        try:
            await self.websocket.send_text(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise CallerDisconnected("the carrier's media socket is closed") from exc

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self._stop_watching()
        # Closing a socket the peer or we already closed is not an error: it is closed.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.close(code, reason)
