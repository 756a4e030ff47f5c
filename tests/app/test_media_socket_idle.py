"""The media socket's idle watchdog (app/media_socket.py): one timer per socket instead of an
``asyncio.timeout`` per frame, with the same outcomes."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from starlette.websockets import WebSocket

from switchboard.app.media_socket import StarletteMediaSocket
from switchboard.errors import CallerDisconnected

pytestmark = pytest.mark.anyio


class QueueWebSocket:
    """Starlette's side, reduced to what the adapter reads: frames from a queue."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[str] = asyncio.Queue()

    async def receive_text(self) -> str:
        return await self.frames.get()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)


def _socket(idle_s: float) -> tuple[StarletteMediaSocket, QueueWebSocket]:
    ws = QueueWebSocket()
    return StarletteMediaSocket(cast(WebSocket, ws), idle_timeout_s=idle_s), ws


async def test_frames_within_the_timeout_keep_the_socket_alive() -> None:
    socket, ws = _socket(0.2)
    for n in range(8):  # 0.4 s of frames, twice the timeout
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, ws.frames.put_nowait, f"frame {n}")
        assert await socket.receive_text() == f"frame {n}"
    await socket.close()


async def test_a_silent_socket_is_half_open() -> None:
    socket, ws = _socket(0.2)
    ws.frames.put_nowait("first")
    assert await socket.receive_text() == "first"
    started = asyncio.get_running_loop().time()
    with pytest.raises(CallerDisconnected, match="half-open"):
        await socket.receive_text()
    assert 0.15 <= asyncio.get_running_loop().time() - started < 1.0
    with pytest.raises(CallerDisconnected):  # and stays so
        await socket.receive_text()


async def test_a_silence_while_the_call_is_busy_is_not_counted_against_the_socket() -> None:
    socket, ws = _socket(0.2)
    ws.frames.put_nowait("first")
    assert await socket.receive_text() == "first"
    await asyncio.sleep(0.35)  # busy elsewhere (not reading) past the timeout
    ws.frames.put_nowait("second")
    assert await socket.receive_text() == "second"
    await socket.close()


async def test_cancelling_the_call_still_cancels_it() -> None:
    socket, _ = _socket(5.0)
    task: asyncio.Task[Any] = asyncio.create_task(socket.receive_text())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await socket.close()


async def test_without_a_timeout_it_waits_for_ever() -> None:
    socket = StarletteMediaSocket(cast(WebSocket, QueueWebSocket()), idle_timeout_s=None)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await socket.receive_text()
