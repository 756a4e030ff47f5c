"""The media socket over a real uvicorn websocket (app/media_socket.py): once accepted, frames go
through the ASGI callables directly, with the outcomes Starlette's checked methods give."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect

from switchboard.app.media_socket import StarletteMediaSocket
from switchboard.emulators.loopback import LoopbackServer
from switchboard.errors import CallerDisconnected

pytestmark = pytest.mark.anyio


def _echo_app(seen: list[object]) -> FastAPI:
    """Echoes each text frame back upper-cased; records what the adapter saw."""
    app = FastAPI()

    @app.websocket("/media")
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        socket = StarletteMediaSocket(websocket, idle_timeout_s=5.0)
        seen.append(socket.direct)
        try:
            while True:
                text = await socket.receive_text()
                seen.append(text)
                await socket.send_text(text.upper())
        except CallerDisconnected as exc:
            seen.append(exc)
        await socket.close()

    return app


async def test_frames_go_both_ways_and_a_close_is_a_disconnect() -> None:
    seen: list[object] = []
    async with LoopbackServer(_echo_app(seen), lifespan="off") as server:
        async with connect(f"{server.ws_url}/media") as ws:
            for text in ("one", "two", '{"event": "media"}'):
                await ws.send(text)
                assert await ws.recv() == text.upper()
            await ws.send(b'{"event": "mark"}')  # binary: handed on as text, for the codec
            assert await ws.recv() == '{"EVENT": "MARK"}'
        for _ in range(100):
            if seen and isinstance(seen[-1], CallerDisconnected):
                break
            await asyncio.sleep(0.01)
    assert seen[0] is True  # the direct path, not the fallback
    assert seen[1:5] == ["one", "two", '{"event": "media"}', '{"event": "mark"}']
    assert isinstance(seen[-1], CallerDisconnected)


async def test_a_send_after_the_caller_left_is_a_disconnect() -> None:
    seen: list[object] = []
    app = FastAPI()

    @app.websocket("/media")
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        socket = StarletteMediaSocket(websocket)
        with pytest.raises(CallerDisconnected):
            await socket.receive_text()  # the client closes
        try:
            for _ in range(50):  # a closed socket fails the send, at once or on a later frame
                await socket.send_text("late")
                await asyncio.sleep(0.01)
        except CallerDisconnected as exc:
            seen.append(exc)
        await socket.close()
        seen.append("closed")

    async with LoopbackServer(app, lifespan="off") as server:
        async with connect(f"{server.ws_url}/media"):
            pass
        for _ in range(200):
            if "closed" in seen:
                break
            await asyncio.sleep(0.01)
    assert isinstance(seen[0], CallerDisconnected)
    assert seen[-1] == "closed"
