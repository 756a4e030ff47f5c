"""A webhook receiver for tests: a real HTTP server on loopback that checks every request with
the Standard Webhooks reference library (``standardwebhooks``), not with switchboard's code.

    async with Receiver(SECRET, fail_first=2) as receiver:
        ...  # point SWITCHBOARD_WEBHOOK_URL at receiver.url
        await eventually(lambda: len(receiver.accepted) == 3)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from switchboard.emulators.loopback import LoopbackServer

__all__ = ["Received", "Receiver"]


@dataclass(frozen=True, slots=True)
class Received:
    """One request that verified: its ``webhook-id`` and JSON body."""

    id: str
    type: str
    data: dict[str, Any]
    timestamp: str
    status: int  # what the receiver answered


@dataclass
class Receiver:
    """A loopback receiver.

    Args:
        secret: the ``whsec_…`` secret it verifies with.
        fail_first: answer ``fail_status`` to the first this many verified requests.
        fail_status: the failure status.
        fail_types: answer ``fail_status`` to every event of these types (while set).
        answer_bytes: size of the body sent with each answer (to check senders bound reads).
        delay_s: wait this long before answering (to check senders time out).
        redirect_to: answer ``307`` to this URL instead.
        port: where to listen (0: any free port; a fixed one to come back on after a stop).
    """

    secret: str
    fail_first: int = 0
    fail_status: int = 500
    fail_types: frozenset[str] = frozenset()
    answer_bytes: int = 0
    delay_s: float = 0.0
    redirect_to: str | None = None
    port: int = 0
    received: list[Received] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    _server: LoopbackServer | None = None

    @property
    def accepted(self) -> list[Received]:
        """The requests answered 2xx, in arrival order."""
        return [r for r in self.received if 200 <= r.status < 300]

    @property
    def url(self) -> str:
        """The hook's URL (with a query token, as receivers' URLs often have)."""
        return f"http://127.0.0.1:{self.port}/hooks/switchboard?token=t0ps3cret"

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.unverified.append(str(exc))
            return PlainTextResponse("bad signature", status_code=401)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.redirect_to is not None:
            status = 307
        elif payload["type"] in self.fail_types or len(self.received) < self.fail_first:
            status = self.fail_status
        else:
            status = 204 if not self.answer_bytes else 200
        self.received.append(
            Received(
                id=request.headers["webhook-id"],
                type=payload["type"],
                data=payload["data"],
                timestamp=request.headers["webhook-timestamp"],
                status=status,
            )
        )
        if status == 307:
            assert self.redirect_to is not None
            return RedirectResponse(self.redirect_to, status_code=307)
        return Response(b"x" * self.answer_bytes if self.answer_bytes else b"", status)

    async def __aenter__(self) -> Receiver:
        app = Starlette(routes=[Route("/hooks/switchboard", self._hook, methods=["POST"])])
        self._server = LoopbackServer(app, port=self.port, lifespan="off")
        await self._server.__aenter__()
        self.port = self._server.port
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        await self._server.__aexit__(exc_type, exc, tb)
