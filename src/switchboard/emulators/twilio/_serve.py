"""Serve an ASGI app with uvicorn on ``host:port`` (0 = any free port) inside a task."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from typing import Any

import anyio
import uvicorn

__all__ = ["AsgiServer"]


class _Server(uvicorn.Server):
    """uvicorn without signal capture: the owner cancels it, not SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class AsgiServer:
    """``async with AsgiServer(app) as srv:`` then ``srv.base_url`` (``http://host:port``)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> AsgiServer:
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("server stopped while starting")
            await asyncio.sleep(0.005)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with anyio.CancelScope(shield=True):  # shut down cleanly even when cancelled
                await self._task
