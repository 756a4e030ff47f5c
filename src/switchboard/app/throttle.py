"""Per-source throttling of failed signature checks (docs/security.md#failed-signature-checks).

A client address that fails ``SWITCHBOARD_SIGNATURE_FAILURE_LIMIT`` webhook signature or media
token checks (default 20) within ``SWITCHBOARD_SIGNATURE_FAILURE_WINDOW_S`` (60 s) is refused
before anything it sends is checked or read — 429 with ``Retry-After`` on a webhook, close 1008
on a media socket — until its oldest failure leaves the window. Guessing signatures or tokens is
hopeless anyway; what this bounds is the work, the logs and the metrics such a client costs.
Checks that pass are never counted, so Twilio and Telnyx themselves are refused only if they
fail too (a wrong key or URL, which refuses their requests regardless).

The source is the client address as uvicorn reports it. Behind a reverse proxy that is the
proxy's, unless uvicorn is told to trust its ``X-Forwarded-For`` (``FORWARDED_ALLOW_IPS``, by
default 127.0.0.1): configure that, or every client shares one window.

Counted: ``switchboard_webhook_rejections`` (each failure, by reason) and
``switchboard_signature_throttled`` (each request refused unchecked).
"""

from __future__ import annotations

import logging
import math
import time

from fastapi import HTTPException, WebSocket
from starlette.requests import HTTPConnection

from switchboard.app.metrics_api import metrics_of
from switchboard.app.state import get_state

__all__ = ["close_if_throttled", "raise_if_throttled", "signature_failed"]

logger = logging.getLogger(__name__)


def _source(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client is not None else "unknown"


def _blocked(conn: HTTPConnection, carrier: str) -> float | None:
    state = get_state(conn)
    wait = state.signature_throttle.blocked(_source(conn), time.monotonic())
    if wait is not None:
        logger.warning(
            "refused %s request from %s unchecked: too many failed signature checks",
            carrier,
            _source(conn),
        )
        if (metrics := metrics_of(state)) is not None:
            metrics.signature_throttled(carrier)
    return wait


def raise_if_throttled(conn: HTTPConnection, carrier: str) -> None:
    """Refuse an HTTP request from a throttled source with 429 and ``Retry-After``.

    Raises:
        HTTPException: 429, when the source failed too many checks recently.
    """
    wait = _blocked(conn, carrier)
    if wait is not None:
        raise HTTPException(
            429,
            "too many failed signature checks from this address",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


async def close_if_throttled(ws: WebSocket, carrier: str) -> bool:
    """Close a media socket from a throttled source (1008); True when it was closed."""
    if _blocked(ws, carrier) is None:
        return False
    await ws.accept()  # accepted only to say why in the close frame
    await ws.close(code=1008, reason="too many failed checks")
    return True


def signature_failed(conn: HTTPConnection) -> None:
    """Count a failed signature or media-token check against the request's source."""
    get_state(conn).signature_throttle.failed(_source(conn), time.monotonic())
