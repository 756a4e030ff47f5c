"""A provider's socket to a peer that stopped answering is closed when the provider lets go.

The peer is a raw TCP server that completes the WebSocket upgrade and then reads nothing (a
provider gone silent): the closing handshake never finishes, yet the connection must end.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from tests.conftest import UNIT
from websockets.asyncio.client import connect

from switchboard.providers.sockets import close_socket

pytestmark = pytest.mark.anyio

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@asynccontextmanager
async def silent_peer() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A WebSocket server that upgrades, then never reads or writes again; the event is set
    when our side's TCP connection ends (the peer sees EOF)."""
    ended = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 (RFC 6455)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await writer.drain()
        while await reader.read(65536):  # the close frame arrives, and is never answered
            pass
        ended.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/", ended
    finally:
        server.close()


async def test_a_silent_peer_is_cut_after_the_timeout() -> None:
    async with silent_peer() as (url, ended):
        ws = await connect(url)
        await close_socket(ws, timeout_s=0.2)
        await asyncio.wait_for(ended.wait(), 2 * UNIT)


async def test_a_close_cancelled_midway_still_ends_the_connection() -> None:
    async with silent_peer() as (url, ended):
        ws = await connect(url)
        closing = asyncio.create_task(close_socket(ws, timeout_s=30))
        await asyncio.sleep(0.1)
        closing.cancel()  # the call ended while its failed provider was being closed
        with pytest.raises(asyncio.CancelledError):
            await closing
        await asyncio.wait_for(ended.wait(), 2 * UNIT)
