"""``GET /metrics``: the app's Prometheus metrics, protected so they are never public by accident.

* ``SWITCHBOARD_METRICS_TOKEN`` set: the scraper must send ``Authorization: Bearer <token>``
  (401 otherwise), from any address.
* unset: only loopback clients (``127.0.0.1``, ``::1``, ``::ffff:127.0.0.1``) may read them; any
  other client gets 403. Loopback is trusted only where it means "this host": not when
  ``SWITCHBOARD_PUBLIC_URL`` names a host other than loopback (a reverse proxy or tunnel on this
  host then makes every request look local, and uvicorn takes the client address from the
  proxy's ``X-Forwarded-For``), and not for a request that carries forwarding headers.

The metrics are the gateway's (see :func:`metrics_of`); when ``monitoring.metrics_enabled`` is
false in providers.yaml there are none and the route answers 404.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, status
from starlette.responses import Response

from switchboard.app.auth import check_bearer
from switchboard.app.state import AppState, get_state
from switchboard.metrics import CONTENT_TYPE, Metrics

__all__ = ["metrics_of", "metrics_router"]

logger = logging.getLogger(__name__)

metrics_router = APIRouter(tags=["monitoring"])


def metrics_of(state: AppState) -> Metrics | None:
    """The app's metrics, or None when metrics are disabled."""
    return state.gateway.metrics


#: Headers a proxy adds; a request that carries one came through something else.
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _loopback_trusted(request: Request, state: AppState) -> bool:
    """Whether this request may read metrics without a token (see the module docstring)."""
    public = state.gateway.settings.public_url
    if public and not _is_loopback(urlsplit(public).hostname):
        return False
    if any(name in request.headers for name in _FORWARDING_HEADERS):
        return False
    return _is_loopback(request.client.host if request.client else None)


@metrics_router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text exposition of this app's registry."""
    state = get_state(request)
    metrics = metrics_of(state)
    if metrics is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "metrics are disabled")
    token = state.gateway.settings.secret("metrics_token")
    if token is not None:
        if not check_bearer(request.headers.get("authorization"), token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or invalid metrics token",
                headers={"WWW-Authenticate": "Bearer"},
            )
    elif not _loopback_trusted(request, state):
        client = request.client.host if request.client else None
        logger.warning("refused /metrics to %s: set SWITCHBOARD_METRICS_TOKEN", client)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "metrics are served to loopback clients only; set SWITCHBOARD_METRICS_TOKEN",
        )
    return Response(metrics.render(), media_type=CONTENT_TYPE)
