"""JSON error bodies and request ids for every HTTP answer.

Every response carries ``X-Request-ID`` (the client's, if it sent a sane one, else a new one);
every error body is ``{"error": {"status": 4xx, "message": "...", "request_id": "..."}}``.
Unexpected exceptions become a 500 with a generic message: the details go to the log only.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response

from switchboard.errors import ClusterUnavailable, ConfigError, SwitchboardError

__all__ = ["install_error_handlers"]

logger = logging.getLogger(__name__)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _request_id(request: Request) -> str:
    rid: str = getattr(request.state, "request_id", "") or ""
    return rid


def _body(request: Request, status: int, message: str, **extra: object) -> JSONResponse:
    payload: dict[str, object] = {"status": status, "message": message}
    payload["request_id"] = _request_id(request)
    payload.update(extra)
    return JSONResponse({"error": payload}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Add the request-id middleware and JSON exception handlers to ``app``."""

    @app.middleware("http")
    async def request_id_middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("x-request-id", "")
        request.state.request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        response = _body(request, exc.status_code, str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['loc']}: {p['message']}" for p in problems)
        return _body(request, 422, f"invalid request: {summary}", problems=problems)

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return _body(request, 503, str(exc), missing=list(exc.missing))

    @app.exception_handler(ClusterUnavailable)
    async def cluster_unavailable(request: Request, exc: ClusterUnavailable) -> JSONResponse:
        # Redis is down or unreachable: another node (or a retry) may do better (503).
        logger.warning("request %s: %s", _request_id(request), exc)
        return _body(request, 503, str(exc))

    @app.exception_handler(SwitchboardError)
    async def switchboard_error(request: Request, exc: SwitchboardError) -> JSONResponse:
        logger.warning("request %s failed: %s", _request_id(request), exc)
        return _body(request, 502, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("request %s crashed", _request_id(request), exc_info=exc)
        return _body(request, 500, "internal error")
