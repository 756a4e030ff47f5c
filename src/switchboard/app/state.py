"""What one running app holds: settings, registry, token signer, the call handler."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from switchboard.config import Settings
from switchboard.providers.registry import ProviderRegistry
from switchboard.ratelimit import FailureThrottle, SlidingWindowLimiter
from switchboard.security import TokenSigner
from switchboard.telephony.base import CallHandler

__all__ = ["AppState", "get_state"]


@dataclass
class AppState:
    """Per-app singletons, reachable from any route as ``get_state(request)``.

    Attributes:
        api_token: the bearer token for ``/v1/*``; generated when ``SWITCHBOARD_API_TOKEN`` is
            unset (``generated_token`` is then True and ``serve`` prints it once).
        outbound_limiter: outbound calls per API token (``SWITCHBOARD_OUTBOUND_RATE_*``).
        signature_throttle: failed signature and media-token checks per client address
            (``SWITCHBOARD_SIGNATURE_FAILURE_*``; app/throttle.py).
    """

    settings: Settings
    registry: ProviderRegistry
    signer: TokenSigner
    calls: CallHandler
    api_token: str
    outbound_limiter: SlidingWindowLimiter
    signature_throttle: FailureThrottle
    generated_token: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, calls: CallHandler) -> AppState:
        token = settings.secret("api_token")
        signing = settings.secret("signing_secret")
        return cls(
            settings=settings,
            registry=ProviderRegistry(settings),
            signer=TokenSigner(signing),
            calls=calls,
            api_token=token or secrets.token_urlsafe(24),
            outbound_limiter=SlidingWindowLimiter(
                settings.outbound_rate_limit, settings.outbound_rate_window_s
            ),
            signature_throttle=FailureThrottle(
                settings.signature_failure_limit, settings.signature_failure_window_s
            ),
            generated_token=token is None,
        )


def get_state(conn: HTTPConnection) -> AppState:
    """The :class:`AppState` of the app serving ``conn`` (a Request or a WebSocket)."""
    state: AppState = conn.app.state.switchboard
    return state
