"""The HTTP/WebSocket application: ``create_app(settings)``."""

from switchboard.app.factory import create_app

__all__ = ["create_app"]
