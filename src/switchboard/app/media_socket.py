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
    """A :class:`~switchboard.telephony.base.MediaSocket` over an accepted Starlette websocket."""

    def __init__(self, websocket: WebSocket, *, idle_timeout_s: float | None = None) -> None:
        self.websocket = websocket
        self.idle_timeout_s = idle_timeout_s

    async def receive_text(self) -> str:
        """The next text frame.

        Raises:
            CallerDisconnected: the socket closed, or nothing arrived for ``idle_timeout_s``:
                carriers stream the caller's audio without a break (silence included), so a
                socket that goes quiet is half-open (the peer vanished without a FIN) and the
                call is over, whether or not TCP ever says so.
        """
        try:
            # asyncio.timeout, not wait_for: the receive stays in this task (wait_for would run it
            # in a task of its own, and a frame that arrives as that task is torn down is lost).
            async with asyncio.timeout(self.idle_timeout_s):
                return await self.websocket.receive_text()
        except TimeoutError as exc:
            raise CallerDisconnected(
                f"no frame from the carrier for {self.idle_timeout_s:g} s: the socket is half-open"
            ) from exc
        except (WebSocketDisconnect, WebSocketDisconnected) as exc:
            raise CallerDisconnected("the carrier's media socket is closed") from exc

    async def send_text(self, data: str) -> None:
        try:
            await self.websocket.send_text(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise CallerDisconnected("the carrier's media socket is closed") from exc

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        # Closing a socket the peer or we already closed is not an error: it is closed.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.close(code, reason)
