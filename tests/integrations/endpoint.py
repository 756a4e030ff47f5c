"""A user's endpoint for tests of HTTP tools and ``agent_request_url``: a real HTTP server on
loopback that checks each request's signature with the Standard Webhooks reference library
(``standardwebhooks``), records it, and answers what the test says.

    async with Endpoint(SECRET, answer=lambda seen: Answer(200, {"status": "shipped"})) as ep:
        ...  # point a tool's http.url at ep.url("/lookup")
        assert ep.seen[0].body["arguments"] == {"order_id": "A1234"}

``Answer(hold=True)`` keeps the request waiting until the endpoint closes (a service that never
answers), so time-limit tests need no sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from switchboard.emulators.loopback import LoopbackServer

__all__ = ["SECRET", "Answer", "Endpoint", "Seen"]

#: The signing secret the tests configure (SWITCHBOARD_WEBHOOK_SECRET).
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@dataclass(frozen=True, slots=True)
class Seen:
    """One request whose signature verified."""

    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the endpoint answers: a status and a JSON value (or raw bytes)."""

    status: int = 200
    json_body: Any = None
    raw: bytes | None = None
    hold: bool = False
    redirect_to: str | None = None


def _ok(_seen: Seen) -> Answer:
    return Answer(200, {"ok": True})


@dataclass
class Endpoint:
    """A loopback endpoint (see the module docstring)."""

    secret: str = SECRET
    answer: Callable[[Seen], Answer] = _ok
    seen: list[Seen] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    port: int = 0
    _server: LoopbackServer | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.unverified.append(str(exc))
            return Response(b"bad signature", 401)
        seen = Seen(
            path=request.url.path,
            query=request.url.query,
            headers=dict(request.headers),
            body=json.loads(body),
        )
        self.seen.append(seen)
        answer = self.answer(seen)
        if answer.hold:
            await self._release.wait()
            return Response(b"", 204)
        if answer.redirect_to is not None:
            return RedirectResponse(answer.redirect_to, status_code=307)
        content = answer.raw if answer.raw is not None else json.dumps(answer.json_body).encode()
        return Response(content, answer.status, media_type="application/json")

    async def __aenter__(self) -> Endpoint:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
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
        self._release.set()
        assert self._server is not None
        await self._server.__aexit__(exc_type, exc, tb)
