"""A loopback server emulating OpenAI Chat Completions (``POST /v1/chat/completions``).

::

    async with OpenAIChatEmulator(script=['{"summary": "Booked."}'], api_key="sk-test") as emu:
        settings = load_settings(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=emu.base_url)
        ...
    assert not emu.violations
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from switchboard.emulators.common import Script, ScriptedTurn
from switchboard.emulators.loopback import LoopbackServer
from switchboard.emulators.openai_chat.core import CHAT_MODELS, ChatCore

__all__ = ["OpenAIChatEmulator", "run"]

TurnSpec = str | Mapping[str, Any] | ScriptedTurn


class OpenAIChatEmulator:
    """Chat Completions on ``127.0.0.1:port`` (0 picks a free port).

    Args:
        host: address to bind.
        port: port to bind.
        script: the answers, in order (a JSON ``say`` answers a structured request as is).
        api_key: the key clients must present (``None``: any non-empty key).
        models: the chat models served.

    Attributes:
        core: the pure core (``core.requests``, ``core.violations``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Iterable[TurnSpec] | None = None,
        api_key: str | None = None,
        models: Collection[str] = CHAT_MODELS,
    ) -> None:
        self.host = host
        self._port = port
        self.core = ChatCore(script=Script.from_obj(script), api_key=api_key, models=models)
        self._server: LoopbackServer | None = None

    @property
    def violations(self) -> list[str]:
        return self.core.violations

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.core.requests

    @property
    def base_url(self) -> str:
        """``http://host:port/v1`` — set it as ``OPENAI_BASE_URL``."""
        return f"http://{self.host}:{self._port}/v1"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._endpoint, methods=["POST"])])

    async def __aenter__(self) -> OpenAIChatEmulator:
        self._server = LoopbackServer(self.app(), host=self.host, port=self._port, lifespan="off")
        await self._server.__aenter__()
        self._port = self._server.port
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.aclose()

    async def _endpoint(self, request: Request) -> Response:
        reply = self.core.handle(
            authorization=request.headers.get("authorization"), raw=await request.body()
        )
        return JSONResponse(reply.body, status_code=reply.status)


async def run(
    *, host: str = "127.0.0.1", port: int = 0, script: Any = None, **options: Any
) -> None:
    """Serve until cancelled; prints the base URL once ready."""
    async with OpenAIChatEmulator(host=host, port=port, script=script, **options) as emu:
        print(f"openai chat emulator: {emu.base_url}", flush=True)
        await asyncio.Event().wait()
