"""What the emulated Call Control API answers, and the stream parameters it accepts (pure).

Written from ``docs/wire/telnyx.md#call-commands`` and ``docs/wire/telnyx.md#errors``: errors
are ``{"errors": [{code, title, detail}]}`` with the HTTP status Telnyx uses; a command on a
call that has ended is 422 with code ``90018``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = [
    "CALL_ENDED",
    "REJECT_CAUSES",
    "auth_failed",
    "check_stream",
    "error_response",
    "json_object",
    "not_found",
    "ok_response",
]

CALL_ENDED = ("90018", "Call has already ended", "This call is no longer active.")
_CODECS = {"PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"}
_TRACKS = {"inbound_track", "outbound_track", "both_tracks"}
#: ``reject`` causes Telnyx documents, and the ``call.hangup`` cause each leads to.
REJECT_CAUSES = {"CALL_REJECTED": "call_rejected", "USER_BUSY": "user_busy"}


def error_response(status: int, code: str, title: str, detail: str) -> JSONResponse:
    """A Telnyx API error answer."""
    return JSONResponse({"errors": [{"code": code, "title": title, "detail": detail}]}, status)


def auth_failed() -> JSONResponse:
    """The answer to a request without the account's API key."""
    return error_response(401, "10009", "Authentication failed", "Could not authenticate.")


def not_found(detail: str) -> JSONResponse:
    """The answer about an unknown call or action."""
    return error_response(404, "10005", "Resource not found", detail)


async def json_object(request: Request) -> dict[str, Any] | None:
    """The request's JSON object body (an empty body is ``{}``), or None when it is not one."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def ok_response() -> JSONResponse:
    """What a command Telnyx accepted answers."""
    return JSONResponse({"data": {"result": "ok"}})


def check_stream(body: dict[str, Any]) -> str | None:
    """Why the streaming parameters of an ``answer``/``streaming_start`` are refused, or None."""
    url = str(body.get("stream_url") or "")
    if not url.startswith(("ws://", "wss://")):
        return f"stream_url must be a ws(s):// URL, got {url[:40]!r}"
    for key in ("stream_codec", "stream_bidirectional_codec"):
        codec = body.get(key)
        if codec is not None and codec not in _CODECS and codec != "default":
            return f"{key} {codec!r} is not one of {sorted(_CODECS)}"
    if body.get("stream_track", "inbound_track") not in _TRACKS:
        return f"stream_track {body.get('stream_track')!r} is invalid"
    if body.get("stream_bidirectional_mode", "mp3") not in ("mp3", "rtp"):
        return "stream_bidirectional_mode must be 'mp3' or 'rtp'"
    return None
