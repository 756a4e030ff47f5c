"""Running the gateway: ``serve(settings)`` (what ``switchboard serve`` does)."""

from __future__ import annotations

import logging
import secrets
import sys
from typing import Any

import uvicorn

from switchboard.app import create_app
from switchboard.app.drain import GatewayServer, drain_app
from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.logs import install_wire_redaction

__all__ = ["serve"]

logger = logging.getLogger(__name__)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str | None = None,
    log_format: str | None = None,
) -> int:
    """Serve the app with uvicorn until interrupted; returns the exit status.

    With ``workers`` above 1, that many processes serve the port (:mod:`switchboard.workers`;
    needs ``SWITCHBOARD_REDIS_URL``), each logging as ``log_level``/``log_format`` say (the
    CLI's options; the settings' by default).

    When ``SWITCHBOARD_API_TOKEN`` is unset a token is generated and printed once, here, so the
    operator can use the REST API; it is never logged.

    Raises:
        ConfigError: a secret that guards the server is shorter than its minimum
            (:meth:`Settings.weak_secrets`); the message names the variables, not the values.
            Or ``workers`` above 1 without Redis (:func:`~switchboard.workers.workers_refusal`).
    """
    if weak := settings.weak_secrets():
        raise ConfigError(
            "refusing to serve with weak secrets: "
            + "; ".join(weak)
            + ' (generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    install_wire_redaction()  # uvicorn logs media URLs with their ?token=; httpx logs requests
    if not settings.public_url:
        logger.warning(
            "SWITCHBOARD_PUBLIC_URL is not set: carrier webhooks cannot be validated or answered"
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "ws": _media_ws_protocol(),
        # Media frames are ~1 KB and /v1/stream's start message a few: uvicorn's 16 MiB default
        # would let each socket buffer 16 MiB × _WS_HIGH_WATER messages.
        "ws_max_size": settings.ws_max_size,
        # After the drain (app/drain.py) the server stops: a request or socket handler still
        # running 5 s later is cancelled rather than holding the process (and a deploy) open.
        "timeout_graceful_shutdown": 5,
    }
    if workers > 1:
        from switchboard.workers import serve_workers, with_token, workers_refusal

        if (reason := workers_refusal(settings, workers)) is not None:
            raise ConfigError(reason)
        if not settings.secret("api_token"):  # one token for every worker, printed once
            token = secrets.token_urlsafe(24)
            _print_token(token)
            settings = with_token(settings, token)
        return serve_workers(
            settings,
            options,
            workers=workers,
            log_level=log_level or settings.log_level,
            log_format=log_format or settings.log_format,
        )
    app = create_app(settings)
    state = app.state.switchboard
    if state.generated_token:
        _print_token(state.api_token)
    # SIGTERM drains (app/drain.py); start-up objects frozen out of the GC (runtime.py)
    GatewayServer(uvicorn.Config(app, **options), lambda: drain_app(state)).run()
    return 0


def _print_token(token: str) -> None:
    print(f"SWITCHBOARD_API_TOKEN not set; this run's API token is: {token}", file=sys.stderr)


def _media_ws_protocol() -> Any:
    """uvicorn's websockets (sans-I/O) protocol, pausing reads only when messages pile up.

    The stock protocol pauses the transport after every message and resumes it when the app
    reads: two ``epoll_ctl`` calls per 20 ms media frame, about 8 % of a core at 100 calls
    (bench/capacity.py). Here reading is paused only once :data:`_WS_HIGH_WATER` messages wait.
    Falls back to uvicorn's ``"auto"`` if its internals are not the ones this was written for.
    The class is defined at module level so that ``--workers`` can pickle it to each worker.
    """
    return _MediaWebSocketProtocol or "auto"


#: Messages queued for the app before the socket stops reading (flow control).
_WS_HIGH_WATER = 16


def _media_protocol_class() -> Any:
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )
    except ImportError:  # pragma: no cover - another uvicorn layout
        return None
    if not hasattr(WebSocketsSansIOProtocol, "send_receive_event_to_app"):  # pragma: no cover
        return None

    class MediaWebSocketProtocol(WebSocketsSansIOProtocol):
        def send_receive_event_to_app(self) -> None:
            if self.read_paused or self.queue.qsize() >= _WS_HIGH_WATER:
                super().send_receive_event_to_app()
                return
            self.read_paused = True  # the base class then skips its pause_reading()
            try:
                super().send_receive_event_to_app()
            finally:
                self.read_paused = False

    # pickled by reference (spawned workers import it from here)
    MediaWebSocketProtocol.__qualname__ = "_MediaWebSocketProtocol"
    return MediaWebSocketProtocol


_MediaWebSocketProtocol: Any = _media_protocol_class()
