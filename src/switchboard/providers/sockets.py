"""Provider WebSockets: a leaner client connection, and closing one so that its TCP connection
never outlives it.

``websockets`` closes with a handshake and aborts the TCP connection only when its own
``close_timeout`` (10 s) runs out. A provider closing a socket whose peer went silent — the
very case failover exists for — bounds the wait itself, and the bound, or the call ending
meanwhile, cancels ``close()`` before that abort: the connection stayed open until the garbage
collector found the socket (``ResourceWarning: unclosed socket``), one per failed-over call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.exceptions import WebSocketException
from websockets.protocol import OPEN
from websockets.typing import DataLike

__all__ = ["CLOSE_TIMEOUT_S", "ProviderConnection", "close_socket", "connect_provider"]

#: How long a closing handshake may take before the connection is cut.
CLOSE_TIMEOUT_S = 2.0


class ProviderConnection(ClientConnection):
    """websockets' client connection with a short path for the one message a call sends most.

    Pass it as ``connect(..., create_connection=ProviderConnection)``. A provider sends a text
    message per 40 ms of caller audio; websockets' ``send`` takes every one through its
    general path (fragmentation checks, an ``async with send_context()``, a ``drain()``
    coroutine), about a quarter of the cost of sending (bench/capacity.py). Here a text
    message on an open connection is framed and written directly, and waits only when the
    transport asked to pause writing; anything else — bytes, fragments, a connection that is
    closing — goes the general way, which raises ``ConnectionClosed`` as before.

    After the opening handshake the connection also lets go of the request and the response
    (their headers were a few kB a call, kept for the call's life, read by nobody).
    """

    async def send(
        self,
        message: DataLike | Any,
        *,
        text: bool | None = None,
    ) -> None:
        if not (
            type(message) is str
            and text is None
            and self.send_in_progress is None
            and self.protocol.state is OPEN
        ):  # the general path (a closed connection: ConnectionClosed from there)
            await super().send(message, text=text)
            return
        self.protocol.send_text(message.encode())
        try:
            self.send_data()
        except Exception as exc:  # as send_context: the connection is lost
            self.set_connection_exc(exc)
            self.transport.abort()
            await asyncio.shield(self.connection_lost_waiter)
            raise self.close_exc from None
        if self.paused:  # the transport's write buffer is over its high-water mark
            await self.drain()

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await super().handshake(*args, **kwargs)
        self.request = None
        self.response = None

    def process_event(self, event: Any) -> None:
        if self.response_rcvd.done():  # the handshake is over: a frame (the response is gone)
            Connection.process_event(self, event)
        else:
            super().process_event(event)


def connect_provider(uri: str, **kwargs: Any) -> connect:
    """websockets' ``connect(uri, **kwargs)`` opening a :class:`ProviderConnection`."""
    return connect(uri, create_connection=ProviderConnection, **kwargs)


async def close_socket(
    ws: ClientConnection, code: int = 1000, reason: str = "", *, timeout_s: float = CLOSE_TIMEOUT_S
) -> None:
    """Close ``ws`` with a handshake of at most ``timeout_s``; whatever happens (a silent peer,
    an error, this task cancelled), the TCP connection is closed when this returns or raises."""
    try:
        async with asyncio.timeout(timeout_s):
            await ws.close(code, reason)
    except (TimeoutError, OSError, WebSocketException):
        pass  # the peer did not finish the handshake: cut below
    finally:
        transport = ws.transport
        if transport is not None and not transport.is_closing():
            transport.abort()
