"""The providers' WebSocket connection (providers/sockets.py): its short send path behaves as
websockets' own, over a real socket."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from switchboard.providers.sockets import ProviderConnection, close_socket, connect_provider

pytestmark = pytest.mark.anyio


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        if message == "close please":
            await ws.close(1000, "asked to")
            return
        await ws.send(message)


async def test_messages_go_both_ways_and_the_handshake_is_let_go() -> None:
    async with serve(_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await connect_provider(f"ws://127.0.0.1:{port}", compression=None)
        try:
            assert isinstance(ws, ProviderConnection)
            assert ws.request is None and ws.response is None  # headers not kept for the call
            for n in range(20):
                await ws.send(f"message {n}")
            assert [await ws.recv() for _ in range(20)] == [f"message {n}" for n in range(20)]
            await ws.send(b"\x00\x01")  # bytes: websockets' general path, a binary frame
            assert await ws.recv() == b"\x00\x01"
            await ws.send(["frag", "ments"])  # a fragmented message, likewise
            assert await ws.recv() == "fragments"
            await ws.send("ok", text=True)
            assert await ws.recv() == "ok"
        finally:
            await close_socket(ws)


async def test_a_send_after_the_peer_closed_raises_connection_closed() -> None:
    async with serve(_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await connect_provider(f"ws://127.0.0.1:{port}", compression=None)
        await ws.send("close please")
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        with pytest.raises(ConnectionClosed):
            await ws.send("too late")
        assert ws.close_code == 1000 and ws.close_reason == "asked to"


async def test_a_full_write_buffer_makes_send_wait_for_the_peer() -> None:
    release = asyncio.Event()

    async def slow_reader(ws: ServerConnection) -> None:
        await release.wait()  # reads nothing until released: the client's buffer fills
        async for message in ws:
            if message == "last":
                await ws.send("got all")

    async with serve(slow_reader, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await connect_provider(f"ws://127.0.0.1:{port}", compression=None, max_size=None)
        try:
            big = "x" * 1_000_000

            async def flood() -> None:
                for _ in range(40):  # 40 MB: more than the kernel's socket buffers hold
                    await ws.send(big)
                await ws.send("last")

            sender = asyncio.create_task(flood())
            await asyncio.sleep(0.3)
            assert not sender.done()  # waiting on the transport, not buffering 40 MB
            assert ws.transport.get_write_buffer_size() < 4_000_000
            release.set()
            await asyncio.wait_for(sender, 30)
            assert await asyncio.wait_for(ws.recv(), 30) == "got all"
        finally:
            release.set()
            await close_socket(ws)
