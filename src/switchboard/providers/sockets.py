"""Closing a provider's WebSocket so that its TCP connection never outlives it.

``websockets`` closes with a handshake and aborts the TCP connection only when its own
``close_timeout`` (10 s) runs out. A provider closing a socket whose peer went silent — the
very case failover exists for — bounds the wait itself, and the bound, or the call ending
meanwhile, cancels ``close()`` before that abort: the connection stayed open until the garbage
collector found the socket (``ResourceWarning: unclosed socket``), one per failed-over call.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

__all__ = ["CLOSE_TIMEOUT_S", "close_socket"]

#: How long a closing handshake may take before the connection is cut.
CLOSE_TIMEOUT_S = 2.0


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
