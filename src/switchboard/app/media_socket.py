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
from typing import cast

from starlette.websockets import (
    WebSocket,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketState,
)

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

    Frames are read and written through the ASGI ``receive``/``send`` the websocket was built
    with, once it is accepted, rather than through Starlette's ``receive_text``/``send_text``:
    those check the socket's state on every call and add a coroutine layer each way per frame
    (py-spy) — the checks guard the handshake, which is over by then. The loop is looked up
    once, not per frame: on Python 3.11 each running-loop lookup is a ``getpid`` system call
    (``strace -c`` at 100 calls: 15.0k → 7.6k a second). Not the task: a playout wait reads in
    a task of its own.
    """

    def __init__(self, websocket: WebSocket, *, idle_timeout_s: float | None = None) -> None:
        self.websocket = websocket
        self.idle_timeout_s = idle_timeout_s
        self._last_frame = 0.0  # loop time of the last frame received
        self._waiting: asyncio.Task[object] | None = None  # the task in receive_text, if any
        self._watchdog: asyncio.TimerHandle | None = None
        self._expired = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Starlette keeps the ASGI callables (middleware-wrapped) as _receive/_send; another
        # layout falls back to its public methods, which do the same with the checks.
        self._asgi_receive = getattr(websocket, "_receive", None)
        self._asgi_send = getattr(websocket, "_send", None)

    @property
    def direct(self) -> bool:
        """Whether frames bypass Starlette's per-call checks (see the class docstring)."""
        return self._asgi_receive is not None and self._asgi_send is not None

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
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if self._watchdog is None:
            self._last_frame = loop.time()
            self._watchdog = loop.call_at(self._last_frame + self.idle_timeout_s, self._watch)
        task = asyncio.current_task(loop)  # given the loop: no running-loop lookup
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
        receive = self._asgi_receive
        if receive is None or self.websocket.client_state is not WebSocketState.CONNECTED:
            return await self._receive_checked()
        message = await receive()
        text = message.get("text")
        if text is not None:
            return cast(str, text)
        if message["type"] == "websocket.disconnect":
            self.websocket.client_state = WebSocketState.DISCONNECTED  # as Starlette records it
            self._stop_watching()
            raise CallerDisconnected("the carrier's media socket is closed")
        # a binary frame: carriers send JSON text; the codec reports what it cannot parse
        data = message.get("bytes") or b""
        return cast(bytes, data).decode("utf-8", "replace")

    async def _receive_checked(self) -> str:
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
        loop = self._loop
        assert loop is not None  # receive_text cached it before it started this timer
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
        send = self._asgi_send
        try:
            if send is not None and self.websocket.application_state is WebSocketState.CONNECTED:
                await send({"type": "websocket.send", "text": data})
            else:
                await self.websocket.send_text(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise CallerDisconnected("the carrier's media socket is closed") from exc

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self._stop_watching()
        # Closing a socket the peer or we already closed is not an error: it is closed.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.close(code, reason)
