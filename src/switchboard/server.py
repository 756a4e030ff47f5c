"""Running the gateway: ``serve(settings)`` (what ``switchboard serve`` does)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from switchboard.app import create_app
from switchboard.config import Settings

__all__ = ["serve"]

logger = logging.getLogger(__name__)


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8080) -> int:
    """Serve the app with uvicorn until interrupted; returns the exit status.

    When ``SWITCHBOARD_API_TOKEN`` is unset a token is generated and printed once, here, so the
    operator can use the REST API; it is never logged.
    """
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
    config = uvicorn.Config(app, host=host, port=port, log_config=None)
    uvicorn.Server(config).run()
    return 0
