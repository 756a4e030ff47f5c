"""Bearer-token authentication for ``/v1/*`` (constant-time comparison, no token in errors)."""

from __future__ import annotations

from fastapi import HTTPException, Request, WebSocket, status

from switchboard.app.state import get_state
from switchboard.security import same_secret

__all__ = ["check_bearer", "require_token", "require_token_ws"]


def check_bearer(header: str | None, expected: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <expected>``."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and same_secret(value.strip(), expected)


async def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the API token."""
    if not check_bearer(request.headers.get("authorization"), get_state(request).api_token):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_token_ws(websocket: WebSocket) -> bool:
    """For websockets: the token in the ``Authorization`` header or ``?token=`` query."""
    expected = get_state(websocket).api_token
    if check_bearer(websocket.headers.get("authorization"), expected):
        return True
    query = websocket.query_params.get("token")
    return bool(query) and same_secret(str(query), expected)
