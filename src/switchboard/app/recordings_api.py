"""``GET /v1/calls/{id}/recording``: a call's recording, whole or by HTTP range (RFC 9110 §14).

The file is found on disk (``recordings/files.py``), so the route answers without the call
store. One byte range is served as ``206 Partial Content`` with ``Content-Range``; a range
that starts past the end is ``416`` with ``Content-Range: bytes */<size>``; a ``Range`` header
that is not one well-formed byte range is ignored (the whole file, ``200``), as the RFC allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse

from switchboard.app.auth import require_token
from switchboard.app.openapi import ERROR_SCHEMA
from switchboard.app.state import get_state
from switchboard.audio.stereo import CONTENT_TYPES

__all__ = ["RangeNotSatisfiable", "parse_range", "recordings_router"]

_CHUNK = 64 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_AUDIO = {
    ctype: {"schema": {"type": "string", "format": "binary"}} for ctype in CONTENT_TYPES.values()
}
_ERROR = {"application/json": {"schema": ERROR_SCHEMA}}

recordings_router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], tags=["calls"])


class RangeNotSatisfiable(ValueError):
    """The byte range asked for lies past the end of the file."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span a ``Range`` header asks of a ``size``-byte file.

    Returns:
        ``(first, last)``; None to serve the whole file (no header, or one that is not a
        single well-formed byte range).

    Raises:
        RangeNotSatisfiable: the range starts past the end (or asks for the last 0 bytes).
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)  # the last N bytes
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        raise RangeNotSatisfiable(header)
    return first, min(last, size - 1)


def _chunks(path: Path, first: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(first)
        while length > 0:
            data = f.read(min(_CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the whole recording", "content": _AUDIO},
    206: {
        "description": "the byte range asked for",
        "content": _AUDIO,
        "headers": {"Content-Range": {"schema": {"type": "string"}}},
    },
    404: {"description": "no such call, or the call has no recording", "content": _ERROR},
    416: {
        "description": "the range starts past the end of the file",
        "content": _ERROR,
        "headers": {"Content-Range": {"schema": {"type": "string"}}},
    },
}


@recordings_router.get(
    "/calls/{call_id}/recording", response_class=StreamingResponse, responses=_RESPONSES
)
def get_recording(
    request: Request,
    call_id: Annotated[str, PathParam(max_length=64)],
    range_header: Annotated[
        str | None,
        Header(alias="Range", description="one byte range, e.g. bytes=0-1023", max_length=200),
    ] = None,
) -> StreamingResponse:
    """The call's stereo recording (left: the caller; right: what the caller heard)."""
    recordings = get_state(request).gateway.recordings
    found = recordings.directory.find(call_id) if recordings is not None else None
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recording of call {call_id!r}")
    try:
        size = found.path.stat().st_size
    except OSError:  # swept meanwhile
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no recording of call {call_id!r}"
        ) from None
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable:
        raise HTTPException(
            status.HTTP_416_RANGE_NOT_SATISFIABLE,
            f"the recording has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{found.path.name}"',
    }
    if span is None:
        first, last, code = 0, size - 1, status.HTTP_200_OK
    else:
        first, last = span
        code = status.HTTP_206_PARTIAL_CONTENT
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = max(0, last - first + 1)
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        _chunks(found.path, first, length),
        status_code=code,
        media_type=found.content_type,
        headers=headers,
    )
