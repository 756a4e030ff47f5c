"""What one running app holds: the gateway, the call handler, carrier runtimes and API access."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from switchboard.app.telnyx_cluster import TelnyxRouting
from switchboard.app.telnyx_control import TelnyxRuntime
from switchboard.gateway import Gateway
from switchboard.ratelimit import FailureThrottle, SlidingWindowLimiter
from switchboard.telephony.base import CallHandler

__all__ = ["AppState", "get_state"]


@dataclass(frozen=True, slots=True)
class AppState:
    """Per-app singletons, reachable from any route as ``get_state(request)``.

    Attributes:
        gateway: the app's services (settings, registry, adapters, store, metrics, signer...).
        calls: the call handler carrier routes hand calls to (the bridge's ``CallManager``).
        telnyx: Telnyx Call Control: live calls and the per-call ordered event workers.
        telnyx_routing: each Telnyx event once, on the node holding its call.
        api_token: the bearer token for ``/v1/*``; generated when ``SWITCHBOARD_API_TOKEN`` is
            unset (``generated_token`` is then True and ``serve`` prints it once).
        outbound_limiter: outbound calls per API token (``SWITCHBOARD_OUTBOUND_RATE_*``).
        signature_throttle: failed signature and media-token checks per client address
            (``SWITCHBOARD_SIGNATURE_FAILURE_*``; app/throttle.py).
    """

    gateway: Gateway
    calls: CallHandler
    telnyx: TelnyxRuntime
    telnyx_routing: TelnyxRouting
    api_token: str
    outbound_limiter: SlidingWindowLimiter
    signature_throttle: FailureThrottle
    generated_token: bool = False

    @classmethod
    def build(cls, gateway: Gateway, calls: CallHandler) -> AppState:
        """The state of an app serving ``calls`` with ``gateway``'s services."""
        settings = gateway.settings
        token = settings.secret("api_token")
        telnyx = TelnyxRuntime(gateway, calls)
        return cls(
            gateway=gateway,
            calls=calls,
            telnyx=telnyx,
            telnyx_routing=TelnyxRouting(telnyx, gateway.cluster),
            api_token=token or secrets.token_urlsafe(24),
            outbound_limiter=SlidingWindowLimiter(
                settings.outbound_rate_limit, settings.outbound_rate_window_s
            ),
            signature_throttle=FailureThrottle(
                settings.signature_failure_limit, settings.signature_failure_window_s
            ),
            generated_token=token is None,
        )

    async def aclose(self) -> None:
        """Shut down in order: queued Telnyx commands finish, live calls end, then the
        gateway closes the carrier adapters and the store (pending records written first)."""
        try:
            await self.telnyx.aclose()
            await self.calls.aclose()
        finally:
            await self.gateway.aclose()


def get_state(conn: HTTPConnection) -> AppState:
    """The :class:`AppState` of the app serving ``conn`` (a Request or a WebSocket)."""
    state: AppState = conn.app.state.switchboard
    return state
