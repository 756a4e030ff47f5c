"""Twilio routes: ``POST /twilio/voice``, ``POST /twilio/status``, ``WS /twilio/media``.

* Every webhook must carry a valid ``X-Twilio-Signature`` over ``SWITCHBOARD_PUBLIC_URL`` + path +
  query (+ sorted form params); otherwise 403 with no TwiML, and the reason is logged. An exact
  replay of an accepted request is refused too (see ``webhooks.ReplayGuard``); status callbacks
  are also deduplicated on (CallSid, CallStatus, SequenceNumber).
* Twilio not configured (no ``TWILIO_AUTH_TOKEN`` / ``SWITCHBOARD_PUBLIC_URL``) → 503 naming them.
* The voice webhook asks the call handler to prepare the call and answers
  ``<Connect><Stream url="wss://…/twilio/media">`` with our call id and a short-lived media token
  as ``<Parameter>``s, or ``<Say>`` + ``<Hangup/>`` when the call is not accepted.
* The media socket checks the upgrade's ``X-Twilio-Signature`` (UNCONFIRMED which URL form Twilio
  signs: the ``wss://`` URL and its ``https://`` form are both accepted, with no params), then
  reads frames until ``start`` and verifies the token from ``customParameters``. Any failure
  closes the socket with 1008 before audio flows; no ``start`` within the timeout closes it too.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect

from switchboard.app.metrics_api import metrics_of
from switchboard.app.state import AppState, get_state
from switchboard.errors import SignatureError
from switchboard.telephony.base import CallDirection, IncomingCall, StreamStarted, TelephonyType
from switchboard.telephony.twilio.media import TwilioMediaCodec
from switchboard.telephony.twilio.webhooks import (
    HMAC_SHA1,
    ReplayGuard,
    reject_twiml,
    signature_algorithm,
    stream_twiml,
    validate_signature,
)

__all__ = ["MEDIA_PATH", "START_TIMEOUT_KEY", "twilio_router"]

logger = logging.getLogger(__name__)

twilio_router = APIRouter(prefix="/twilio", tags=["twilio"])
MEDIA_PATH = "/twilio/media"
#: ``AppState.extras`` key overriding how long a media socket may wait for ``start`` (seconds).
START_TIMEOUT_KEY = "twilio.start_timeout_s"
_GUARD_KEY = "twilio.replay_guard"
_XML = "text/xml"
_CARRIER = TelephonyType.TWILIO


def _missing(state: AppState) -> list[str]:
    s = state.settings
    missing = [] if s.twilio_auth_token else ["TWILIO_AUTH_TOKEN"]
    return missing + ([] if s.public_url else ["SWITCHBOARD_PUBLIC_URL"])


def _guard(state: AppState) -> ReplayGuard:
    guard = state.extras.get(_GUARD_KEY)
    if not isinstance(guard, ReplayGuard):
        guard = state.extras[_GUARD_KEY] = ReplayGuard()
    return guard


def _signing_key(state: AppState, algorithm: str) -> str | None:
    if algorithm == HMAC_SHA1:
        return state.settings.secret("twilio_auth_token")
    return state.settings.secret("twilio_webhook_shared_key")


def _public(state: AppState, path: str, query: str) -> str:
    base = state.settings.public_url or ""
    return f"{base}{path}" + (f"?{query}" if query else "")


def _forbidden(why: str, request: Request) -> Response:
    logger.warning("rejected Twilio webhook %s: %s", request.url.path, why)
    if (metrics := metrics_of(get_state(request))) is not None:
        metrics.signature_rejected(_CARRIER.value, why)
    return Response(status_code=403, content="forbidden", media_type="text/plain")


def _unconfigured(missing: list[str]) -> JSONResponse:
    logger.error("Twilio webhook received but not configured: set %s", ", ".join(missing))
    message = f"Twilio is not configured: set {', '.join(missing)}"
    return JSONResponse({"error": {"status": 503, "message": message}}, status_code=503)


async def _verified_form(
    request: Request, state: AppState
) -> tuple[FormData | None, str | None, str]:
    """(form, rejection reason, replay key) for a webhook request."""
    raw = await request.body()
    signature = request.headers.get("x-twilio-signature")
    algorithm = signature_algorithm(request.headers.get("x-twilio-webhooks-signature-settings"))
    key = _signing_key(state, algorithm)
    url = _public(state, request.url.path, request.url.query)
    replay_key = ReplayGuard.key(
        url, signature, raw, request.headers.get("i-twilio-idempotency-token")
    )
    if not signature:
        return None, "missing X-Twilio-Signature", replay_key
    if key is None:
        return None, f"no key configured for {algorithm} signatures", replay_key
    form = await request.form()
    is_json = request.headers.get("content-type", "").startswith("application/json")
    params = None if is_json else list(form.multi_items())
    pairs = [(k, v) for k, v in params or [] if isinstance(v, str)]
    if not validate_signature(key, [url], pairs, signature, algorithm=algorithm, body=raw):
        return None, f"{algorithm} signature does not match {url}", replay_key
    if _guard(state).seen(replay_key):
        return None, "replayed request", replay_key
    return form, None, replay_key


def _field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


@twilio_router.post("/voice")
async def voice_webhook(request: Request) -> Response:
    """Twilio's incoming-call (or outbound-answered) webhook → TwiML."""
    state = get_state(request)
    if missing := _missing(state):
        return _unconfigured(missing)
    form, why, replay_key = await _verified_form(request, state)
    if form is None:
        return _forbidden(why or "invalid", request)
    account = _field(form, "AccountSid") or None
    expected_account = state.settings.twilio_account_sid
    if expected_account and account and account != expected_account:
        return _forbidden(f"AccountSid {account} is not ours", request)
    direction = _field(form, "Direction", "inbound")
    call = IncomingCall(
        carrier=_CARRIER,
        carrier_call_id=_field(form, "CallSid"),
        from_number=_field(form, "From"),
        to_number=_field(form, "To"),
        direction=CallDirection.INBOUND if direction == "inbound" else CallDirection.OUTBOUND,
        account_id=account,
        call_id=request.query_params.get("call_id"),
    )
    if not call.carrier_call_id:
        return _forbidden("no CallSid", request)
    prepared = await state.calls.prepare(call)
    _guard(state).remember(replay_key)
    if not prepared.accepted:
        logger.info("call %s not accepted: %s", call.carrier_call_id, prepared.reason)
        reason = "We are sorry, no agent can take your call right now. Goodbye."
        return Response(reject_twiml(reason), media_type=_XML)
    token = state.signer.sign(prepared.call_id, _CARRIER.value)
    stream_url = f"{state.settings.public_ws_url}{MEDIA_PATH}"
    twiml = stream_twiml(stream_url, {"call_id": prepared.call_id, "token": token})
    logger.info(
        "answering Twilio call %s as %s",
        call.carrier_call_id,
        prepared.call_id,
        extra={"call_id": prepared.call_id},
    )
    return Response(twiml, media_type=_XML)


@twilio_router.post("/status")
async def status_webhook(request: Request) -> Response:
    """Twilio status callbacks → ``calls.update_status``; answers 204."""
    state = get_state(request)
    if missing := _missing(state):
        return _unconfigured(missing)
    form, why, replay_key = await _verified_form(request, state)
    if form is None:
        return _forbidden(why or "invalid", request)
    sid, status = _field(form, "CallSid"), _field(form, "CallStatus")
    if not sid or not status:
        return _forbidden("no CallSid/CallStatus", request)
    seq_key = ReplayGuard.key("status", sid, status, _field(form, "SequenceNumber"))
    guard = _guard(state)
    if guard.seen(seq_key):
        return _forbidden(f"duplicate status {status} for {sid}", request)
    details = {
        name: value
        for name, value in form.items()
        if isinstance(value, str) and name not in ("CallSid", "CallStatus")
    }
    await state.calls.update_status(_CARRIER, sid, status, **details)
    guard.remember(replay_key)
    guard.remember(seq_key)
    return Response(status_code=204)


# -- media websocket -------------------------------------------------------------------------------
async def _reject(ws: WebSocket, reason: str) -> None:
    logger.warning("closing Twilio media socket: %s", reason)
    if (metrics := metrics_of(get_state(ws))) is not None:
        metrics.signature_rejected(_CARRIER.value, reason)
    await ws.close(code=1008, reason=reason[:120])


def _upgrade_ok(ws: WebSocket, state: AppState) -> str | None:
    """None if the upgrade's signature is valid, else why not."""
    signature = ws.headers.get("x-twilio-signature")
    if not signature:
        return "missing X-Twilio-Signature on upgrade"
    algorithm = signature_algorithm(ws.headers.get("x-twilio-webhooks-signature-settings"))
    key = _signing_key(state, algorithm)
    ws_base = state.settings.public_ws_url or ""
    query = f"?{ws.url.query}" if ws.url.query else ""
    wss = f"{ws_base}{ws.url.path}{query}"
    https = "http" + wss[2:] if wss.startswith("ws") else wss
    if key is None or not validate_signature(
        key, [wss, https], None, signature, algorithm=algorithm
    ):
        return "upgrade signature does not match"
    return None


async def _await_start(ws: WebSocket, codec: TwilioMediaCodec) -> StreamStarted | None:
    while True:
        for event in codec.receive(await ws.receive_text()):
            if isinstance(event, StreamStarted):
                return event
            logger.debug("before start: %s", type(event).__name__)


@twilio_router.websocket("/media")
async def media_socket(ws: WebSocket) -> None:
    """Twilio Media Streams: authenticate, wait for ``start``, hand over to the call handler."""
    state = get_state(ws)
    await ws.accept()
    if _missing(state):
        await ws.close(code=1011, reason="twilio not configured")
        return
    if (why := _upgrade_ok(ws, state)) is not None:
        await _reject(ws, why)
        return
    codec = TwilioMediaCodec()
    timeout: Any = state.extras.get(START_TIMEOUT_KEY, 10.0)
    started: StreamStarted | None = None
    try:
        with anyio.move_on_after(float(timeout)):
            started = await _await_start(ws, codec)
    except WebSocketDisconnect:
        logger.info("Twilio media socket closed before start")
        return
    except KeyError:  # Starlette's receive_text on a binary frame
        await _reject(ws, "binary frame before start")
        return
    if started is None:
        await _reject(ws, f"no start message within {timeout} s")
        return
    params = started.custom_parameters
    try:
        claims = state.signer.verify(params.get("token"), carrier=_CARRIER.value)
    except SignatureError as exc:
        await _reject(ws, f"media token rejected: {exc}")
        return
    if params.get("call_id") != claims.call_id:
        await _reject(ws, "media token is for another call")
        return
    logger.info(
        "Twilio stream %s started for call %s",
        started.stream_id,
        claims.call_id,
        extra={"call_id": claims.call_id},
    )
    try:
        await state.calls.run_media(
            call_id=claims.call_id, carrier=_CARRIER, codec=codec, socket=ws, started=started
        )
    except WebSocketDisconnect:
        logger.info(
            "Twilio media socket for call %s disconnected",
            claims.call_id,
            extra={"call_id": claims.call_id},
        )
