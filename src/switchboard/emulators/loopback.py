"""Serve an ASGI app with uvicorn on a loopback port, as an async context manager.

Every emulator, the demo and the end-to-end tests run their servers through this one class.
Port 0 works: the bound port is read from the listening socket. A pre-bound socket
(:func:`bind_loopback`) can be passed so a caller knows the port before building the app (an
app whose settings must contain its own public URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from types import TracebackType
from typing import Any, Literal

import anyio
import uvicorn

__all__ = ["LoopbackServer", "bind_loopback"]

#: uvicorn's own default largest WebSocket message (16 MiB).
_UVICORN_WS_MAX_SIZE = 16 * 1024 * 1024


def bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound (not yet listening) TCP socket; ``getsockname()[1]`` is its port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on sockets whose proto says TCP,
    # and without it Nagle holds a media frame sent right after a mark until the peer's ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class _Server(uvicorn.Server):
    """uvicorn without signal capture: the owner stops it, not SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LoopbackServer:
    """``async with LoopbackServer(app) as srv:`` → ``srv.base_url`` serves ``app``.

    Args:
        app: any ASGI application.
        host, port: where to listen (port 0: any free port).
        sock: a socket from :func:`bind_loopback` to use instead of binding here.
        lifespan: run the app's lifespan (``"on"``), or not (``"off"``: plain emulators).
        ssl_certfile, ssl_keyfile: serve TLS (``https``/``wss``).
        ws_max_size: the largest WebSocket message accepted (larger: close 1009); None keeps
            uvicorn's 16 MiB. Serving switchboard's app, pass ``settings.ws_max_size``, the
            limit ``switchboard serve`` applies, so tests meet the same limit.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        lifespan: Literal["on", "off", "auto"] = "on",
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ws_max_size: int | None = None,
    ) -> None:
        self.host = host
        self._sock = sock or bind_loopback(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._tls = ssl_certfile is not None
        config = uvicorn.Config(
            app,
            log_level="warning",
            ws="websockets-sansio",
            lifespan=lifespan,
            access_log=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            ws_max_size=_UVICORN_WS_MAX_SIZE if ws_max_size is None else ws_max_size,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self._tls else 'ws'}://{self.host}:{self.port}"

    async def __aenter__(self) -> LoopbackServer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        try:
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # raises why uvicorn could not start
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.005)
        except BaseException:  # did not start, or the caller gave up: nobody else will
            task, self._task = self._task, None  # close the socket (nor stop uvicorn)
            self._server.should_exit = True
            with anyio.CancelScope(shield=True), contextlib.suppress(BaseException):
                await task  # (its failure is what is being raised)
            self._sock.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop serving (waits for open connections to close, at most a second) and close
        the socket, also when the server never started."""
        if self._task is not None:
            self._server.should_exit = True
            with anyio.CancelScope(shield=True), contextlib.suppress(asyncio.CancelledError):
                await self._task  # shut down cleanly even when the caller is being cancelled
            self._task = None
        self._sock.close()
