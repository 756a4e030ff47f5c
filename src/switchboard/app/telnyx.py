"""Telnyx routes: Call Control webhooks (``POST /telnyx/webhook``) and media (``WS /telnyx/media``).

A webhook is verified (Ed25519 over ``"{telnyx-timestamp}|{raw body}"``, 300 s window) and
de-duplicated by event id across the cluster (Telnyx retries), then queued on its call's worker
— on the node holding the call (``app/telnyx_cluster.py``) — and acknowledged at once; what
each event does is :mod:`switchboard.app.telnyx_control`'s (the app's
:class:`~switchboard.app.telnyx_control.TelnyxRuntime`, ``get_state(request).telnyx``).

The media socket checks the token at the upgrade (close 1008 otherwise), reads frames through
:class:`TelnyxMediaCodec` until ``start`` (closing after ``start_timeout_s`` without one), checks
that ``start.call_control_id`` is the call the token was minted for, then hands the socket to
``calls.run_media``. Unconfigured, the webhook answers 503 without naming the missing settings
(they are logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, HTTPException, Request, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from switchboard.app.media_socket import StarletteMediaSocket
from switchboard.app.metrics_api import metrics_of
from switchboard.app.state import get_state
from switchboard.app.throttle import close_if_throttled, raise_if_throttled, signature_failed
from switchboard.errors import (
    CallerDisconnected,
    ClusterUnavailable,
    ConfigError,
    RemoteProtocolError,
    SignatureError,
)
from switchboard.telephony.base import StreamStarted, TelephonyType
from switchboard.telephony.telnyx.media import TelnyxMediaCodec
from switchboard.telephony.telnyx.webhooks import parse_event

__all__ = ["telnyx_router"]

logger = logging.getLogger(__name__)

telnyx_router = APIRouter(tags=["telnyx"])
_TELNYX = TelephonyType.TELNYX


@telnyx_router.post("/telnyx/webhook")
async def telnyx_webhook(request: Request) -> dict[str, str]:
    """Verify, de-duplicate and queue one Call Control webhook; answers at once."""
    runtime = get_state(request).telnyx
    try:
        verifier = runtime.check_configured()
    except ConfigError as exc:  # the names go to the operator's log, not to the caller
        logger.error("Telnyx webhook received but %s", exc)
        raise HTTPException(503, "Telnyx is not configured on this server") from exc
    raise_if_throttled(request, _TELNYX.value)  # 429 before the body is even read
    body = await request.body()
    try:
        verifier.verify(body, request.headers)
    except SignatureError as exc:
        signature_failed(request)
        client = request.client.host if request.client else "?"
        logger.warning("rejected Telnyx webhook from %s: %s", client, exc)
        if (metrics := metrics_of(get_state(request))) is not None:
            metrics.signature_rejected(_TELNYX.value, f"signature: {exc}")
        raise HTTPException(403, "invalid Telnyx webhook signature") from exc
    try:
        event = parse_event(body)
    except RemoteProtocolError as exc:
        logger.warning("unreadable Telnyx webhook: %s", exc)
        raise HTTPException(400, "malformed Telnyx webhook") from exc
    try:
        accepted = await get_state(request).telnyx_routing.accept(event, body)
    except ClusterUnavailable as exc:  # Telnyx retries later, maybe on another node
        logger.error("Telnyx webhook refused: %s", exc)
        raise HTTPException(503, "cluster state unavailable") from exc
    if not accepted:
        logger.info("duplicate Telnyx event %s (%s) ignored", event.id, event.event_type)
        return {"status": "duplicate"}
    return {"status": "accepted"}


@telnyx_router.websocket("/telnyx/media")
async def telnyx_media(websocket: WebSocket) -> None:
    """Telnyx's media stream: token checked at the upgrade, then the call manager runs it."""
    if await close_if_throttled(websocket, _TELNYX.value):
        return
    state = get_state(websocket)
    try:
        claims = state.gateway.signer.verify(
            websocket.query_params.get("token"), carrier=_TELNYX.value
        )
    except SignatureError as exc:
        logger.warning("Telnyx media socket refused: %s", exc)
        signature_failed(websocket)
        if (metrics := metrics_of(state)) is not None:
            metrics.signature_rejected(_TELNYX.value, "media token")
        await websocket.accept()
        await websocket.close(code=1008, reason="invalid media token")
        return
    runtime = state.telnyx
    call = runtime.by_call_id.get(claims.call_id)
    codec = TelnyxMediaCodec(  # outbound follows start
        l16_byteorder=runtime.l16_byteorder, pcm_rate=call.pcm_rate if call else None
    )
    await websocket.accept()
    try:
        started = await asyncio.wait_for(_await_start(websocket, codec), runtime.start_timeout_s)
        if started.call_id != claims.carrier_call_id:
            logger.warning("Telnyx stream for %s presented another call's token", started.call_id)
            await websocket.close(code=1008, reason="token is for another call")
            return
        socket = StarletteMediaSocket(
            websocket, idle_timeout_s=state.gateway.settings.media_idle_timeout_s
        )
        await state.calls.run_media(
            call_id=claims.call_id, carrier=_TELNYX, codec=codec, socket=socket, started=started
        )
    except TimeoutError:
        logger.warning("Telnyx media socket sent no start within %.1f s", runtime.start_timeout_s)
    except WebSocketDisconnect:
        logger.info("Telnyx media socket closed before start")
    except CallerDisconnected:
        logger.info("Telnyx media socket for call %s closed", claims.call_id)
    finally:
        if websocket.application_state is not WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()


async def _await_start(websocket: WebSocket, codec: TelnyxMediaCodec) -> StreamStarted:
    """Read frames until ``start``; anything before it (``connected``) is only logged."""
    while True:
        for event in codec.receive(await websocket.receive_text()):
            if isinstance(event, StreamStarted):
                return event
            logger.debug("Telnyx media before start: %s", type(event).__name__)
