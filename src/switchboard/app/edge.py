"""The app's edge: what is checked from the headers before any route reads a request body.

FastAPI reads and parses a body before it runs a route's dependencies, so without this an
unauthenticated client could make ``/v1`` parse whatever it sends, and any route would read a
body of any size. :class:`EdgeGuard` is plain ASGI middleware in front of the routes:

* ``/v1`` and ``/v1/…`` HTTP requests need ``Authorization: Bearer <SWITCHBOARD_API_TOKEN>``
  (401 otherwise, nothing read). The routers' own ``require_token`` stays as a second check.
  ``WS /v1/stream`` checks its token itself, before it accepts.
* Bodies are bounded: ``SWITCHBOARD_WEBHOOK_MAX_BODY`` for ``/twilio/…`` and ``/telnyx/…``,
  ``SWITCHBOARD_API_MAX_BODY`` for everything else. A ``Content-Length`` over the limit is
  answered 413 at once (the server never delivers more than the length it announced); a body
  without one (chunked) is read here up to the limit, and 413 past it.

Error bodies have the app's usual shape, ``{"error": {"status", "message", "request_id"}}``.
(Recent FastAPI releases have a ``max_body_size`` of their own; the project supports older ones.)
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.app.auth import check_bearer

__all__ = ["EdgeGuard"]

logger = logging.getLogger(__name__)

_WEBHOOK_PREFIXES = ("/twilio/", "/telnyx/")


def _is_api(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


class EdgeGuard:
    """ASGI middleware: the API token and the body size, from the headers (module docstring).

    The settings are read from the app's state on every request (``scope["app"]``), so they
    follow the app they serve.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.switchboard
        path: str = scope["path"]
        headers = Headers(scope=scope)
        if _is_api(path) and not check_bearer(headers.get("authorization"), state.api_token):
            await _error(
                scope,
                send,
                401,
                "missing or invalid bearer token",
                {"WWW-Authenticate": "Bearer"},
            )
            return
        settings = state.gateway.settings
        webhook = path.startswith(_WEBHOOK_PREFIXES)
        limit: int = settings.webhook_max_body if webhook else settings.api_max_body
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _error(scope, send, 400, "invalid Content-Length")
            elif int(length) > limit:
                await _too_large(scope, send, path, limit)
            else:
                await self.app(scope, receive, send)
            return
        body: list[Message] = []
        size = 0
        while True:  # no Content-Length: read it here, at most ``limit`` bytes
            message = await receive()
            body.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(scope, send, path, limit)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(body, receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` first, then the server's."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _too_large(scope: Scope, send: Send, path: str, limit: int) -> None:
    logger.warning("refused a request body over %d bytes on %s", limit, path)
    await _error(scope, send, 413, f"request body larger than {limit} bytes")


async def _error(
    scope: Scope,
    send: Send,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    state: dict[str, Any] = scope.get("state") or {}
    request_id = str(state.get("request_id", ""))  # set by the request-id middleware outside
    payload = {"error": {"status": status, "message": message, "request_id": request_id}}
    await JSONResponse(payload, status_code=status, headers=headers)(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}  # a response never reads the request here
