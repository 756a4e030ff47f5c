"""Running the gateway: ``serve(settings)`` (what ``switchboard serve`` does)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn

from switchboard.app import create_app
from switchboard.app.drain import DrainingServer, drain_calls, move_twilio_calls
from switchboard.app.state import AppState
from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.logs import install_wire_redaction

__all__ = ["serve"]

logger = logging.getLogger(__name__)


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8080) -> int:
    """Serve the app with uvicorn until interrupted; returns the exit status.

    When ``SWITCHBOARD_API_TOKEN`` is unset a token is generated and printed once, here, so the
    operator can use the REST API; it is never logged.

    Raises:
        ConfigError: a secret that guards the server is shorter than its minimum
            (:meth:`Settings.weak_secrets`); the message names the variables, not the values.
    """
    if weak := settings.weak_secrets():
        raise ConfigError(
            "refusing to serve with weak secrets: "
            + "; ".join(weak)
            + ' (generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    install_wire_redaction()  # uvicorn logs media URLs with their ?token=; httpx logs requests
    app = create_app(settings)
    state = app.state.switchboard
    if state.generated_token:
        print(
            f"SWITCHBOARD_API_TOKEN not set; this run's API token is: {state.api_token}",
            file=sys.stderr,
        )
    if not settings.public_url:
        logger.warning(
            "SWITCHBOARD_PUBLIC_URL is not set: carrier webhooks cannot be validated or answered"
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        ws=_media_ws_protocol(),
        # Media frames are ~1 KB and /v1/stream's start message a few: uvicorn's 16 MiB default
        # would let each socket buffer 16 MiB × _WS_HIGH_WATER messages.
        ws_max_size=settings.ws_max_size,
    )
    DrainingServer(config, lambda: _drain(state)).run()  # SIGTERM drains (app/drain.py)
    return 0


async def _drain(state: AppState) -> None:
    """Drain this app's calls on SIGTERM (``SWITCHBOARD_DRAIN_SECONDS``)."""
    from switchboard.bridge.manager import CallManager

    gateway = state.gateway
    if not isinstance(state.calls, CallManager):  # a custom handler: nothing of ours to drain
        gateway.drain()
        return
    manager = state.calls
    shared = gateway.cluster.backend != "memory"  # other nodes can take the calls over

    async def move(call_ids: list[str]) -> set[str]:
        return await move_twilio_calls(gateway, manager, call_ids)

    await drain_calls(
        gateway, manager, gateway.settings.drain_seconds, move=move if shared else None
    )


def _media_ws_protocol() -> Any:
    """uvicorn's websockets (sans-I/O) protocol, pausing reads only when messages pile up.

    The stock protocol pauses the transport after every message and resumes it when the app
    reads: two ``epoll_ctl`` calls per 20 ms media frame, about 8 % of a core at 100 calls
    (bench/capacity.py). Here reading is paused only once :data:`_WS_HIGH_WATER` messages wait.
    Falls back to uvicorn's ``"auto"`` if its internals are not the ones this was written for.
    """
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )
    except ImportError:  # pragma: no cover - another uvicorn layout
        return "auto"
    if not hasattr(WebSocketsSansIOProtocol, "send_receive_event_to_app"):  # pragma: no cover
        return "auto"

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

    return MediaWebSocketProtocol


#: Messages queued for the app before the socket stops reading (flow control).
_WS_HIGH_WATER = 16
