"""Twilio routes: ``POST /twilio/voice``, ``POST /twilio/status``, ``POST /twilio/amd``
(answering-machine verdicts of outbound calls), ``WS /twilio/media``.

* Every webhook must carry a valid ``X-Twilio-Signature`` over ``SWITCHBOARD_PUBLIC_URL`` + path +
  query (+ sorted form params); otherwise 403 with no TwiML, and the reason is logged. The
  headers are checked before the body is read.
* Replays (docs/security.md#twilio-webhook-replays): a request whose signed payload was already
  accepted — by any node of the cluster — is refused (claims of the gateway's ``cluster``,
  taken before any work, given back when the work fails so Twilio's retries of a failure pass;
  503 while the shared state cannot be reached); status callbacks are also
  deduplicated on (CallSid, CallStatus, SequenceNumber). The voice webhook answers each CallSid
  once: a second voice webhook for an answered CallSid is refused, unless it is our own DTMF
  redirect with a fresh ``resume`` value. A copy of a voice webhook that arrives while the first
  is still being prepared (Twilio retrying after a read timeout) waits for it and gets the same
  TwiML: the same call and the same media token, never a second provider session or a second
  token.
* A status callback for a call another node of the cluster holds is handed to that node
  (``app/cluster_control.py``).
* Twilio not configured (no ``TWILIO_AUTH_TOKEN`` / ``SWITCHBOARD_PUBLIC_URL``) → 503; the
  missing variables are named in the log only.
* The voice webhook asks the call handler to prepare the call and answers
  ``<Connect><Stream url="wss://…/twilio/media">`` with our call id and a short-lived media token
  bound to the CallSid as ``<Parameter>``s, or ``<Say>`` + ``<Hangup/>`` when the call is not
  accepted.
* The media socket checks the upgrade's ``X-Twilio-Signature`` (UNCONFIRMED which URL form Twilio
  signs: the ``wss://`` URL and its ``https://`` form are both accepted, with no params) before
  it accepts, then reads frames until ``start`` and verifies the token from ``customParameters``
  and that ``start.callSid`` is the CallSid the token was minted for. Any failure closes the
  socket with 1008 before audio flows; no ``start`` within ``SWITCHBOARD_MEDIA_START_TIMEOUT_S``
  closes it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect

from switchboard.app.cluster_control import status_to_owner
from switchboard.app.media_socket import StarletteMediaSocket
from switchboard.app.metrics_api import metrics_of
from switchboard.app.state import AppState, get_state
from switchboard.app.throttle import close_if_throttled, raise_if_throttled, signature_failed
from switchboard.bridge.manager import CallManager
from switchboard.config import Settings
from switchboard.errors import CallerDisconnected, ClusterUnavailable, SignatureError
from switchboard.gateway import TWILIO_CALL_MEMORY_S
from switchboard.telephony.amd import twilio_verdict
from switchboard.telephony.base import CallDirection, IncomingCall, StreamStarted, TelephonyType
from switchboard.telephony.twilio.media import TwilioMediaCodec
from switchboard.telephony.twilio.webhooks import (
    HMAC_SHA1,
    ReplayGuard,
    busy_twiml,
    hangup_twiml,
    reject_twiml,
    resume_is_fresh,
    signature_algorithm,
    signed_payload,
    stream_twiml,
    validate_signature,
)

__all__ = ["MEDIA_PATH", "RESUME_PATH", "resume_url", "twilio_router"]

logger = logging.getLogger(__name__)

twilio_router = APIRouter(prefix="/twilio", tags=["twilio"])
MEDIA_PATH = "/twilio/media"
#: Twilio requests this (``<Connect action>``) when a call's stream ends (bridge/resume.py).
RESUME_PATH = "/twilio/resume"
#: How old our DTMF redirect's ``resume`` value may be when Twilio fetches it (tones play first).
RESUME_WINDOW_S = 120.0
_XML = "text/xml"
#: Cluster claim namespaces (docs/cluster.md): signed requests accepted, CallSids answered.
REQUEST_CLAIMS, CALL_CLAIMS = "twilio-request", "twilio-call"
#: How long an accepted signed request is remembered (Twilio retries within seconds).
REQUEST_MEMORY_S = 600.0
_CARRIER = TelephonyType.TWILIO


def _missing(state: AppState) -> list[str]:
    s = state.gateway.settings
    missing = [] if s.twilio_auth_token else ["TWILIO_AUTH_TOKEN"]
    return missing + ([] if s.public_url else ["SWITCHBOARD_PUBLIC_URL"])


def _signing_key(state: AppState, algorithm: str) -> str | None:
    if algorithm == HMAC_SHA1:
        return state.gateway.settings.secret("twilio_auth_token")
    return state.gateway.settings.secret("twilio_webhook_shared_key")


def _public(state: AppState, path: str, query: str) -> str:
    base = state.gateway.settings.public_url or ""
    return f"{base}{path}" + (f"?{query}" if query else "")


def _forbidden(why: str, request: Request) -> Response:
    logger.warning("rejected Twilio webhook %s: %s", request.url.path, why)
    if (metrics := metrics_of(get_state(request))) is not None:
        metrics.signature_rejected(_CARRIER.value, why)
    return Response(status_code=403, content="forbidden", media_type="text/plain")


def _unconfigured(missing: list[str]) -> JSONResponse:
    # The names go to the operator's log, not to whoever probes the webhook.
    logger.error("Twilio webhook received but not configured: set %s", ", ".join(missing))
    message = "Twilio is not configured on this server"
    return JSONResponse({"error": {"status": 503, "message": message}}, status_code=503)


async def _verified_form(request: Request, state: AppState) -> tuple[FormData, str] | str:
    """:func:`_checked_form`, refused with 429 first when the source failed too many checks
    (app/throttle.py); a failed check counts against the source."""
    raise_if_throttled(request, _CARRIER.value)
    verified = await _checked_form(request, state)
    if isinstance(verified, str):
        signature_failed(request)
    return verified


async def _checked_form(request: Request, state: AppState) -> tuple[FormData, str] | str:
    """(form, replay key) of a correctly signed webhook, or why it is refused.

    The headers are checked before the body is read; the replay key is a digest of what the
    signature covers (:func:`signed_payload`), nothing unsigned.
    """
    signature = request.headers.get("x-twilio-signature")
    if not signature:
        return "missing X-Twilio-Signature"
    algorithm = signature_algorithm(request.headers.get("x-twilio-webhooks-signature-settings"))
    key = _signing_key(state, algorithm)
    if key is None:
        return f"no key configured for {algorithm} signatures"
    raw = await request.body()
    form = await request.form()
    url = _public(state, request.url.path, request.url.query)
    is_json = request.headers.get("content-type", "").startswith("application/json")
    params = None if is_json else list(form.multi_items())
    pairs = [(k, v) for k, v in params or [] if isinstance(v, str)]
    if not validate_signature(key, [url], pairs, signature, algorithm=algorithm, body=raw):
        return f"{algorithm} signature does not match {url}"
    return form, ReplayGuard.key(signed_payload(url, pairs))


def _field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


@twilio_router.post("/voice")
async def voice_webhook(request: Request) -> Response:
    """Twilio's incoming-call (or outbound-answered) webhook → TwiML."""
    state = get_state(request)
    if missing := _missing(state):
        return _unconfigured(missing)
    verified = await _verified_form(request, state)
    if isinstance(verified, str):
        return _forbidden(verified, request)
    form, replay_key = verified
    account = _field(form, "AccountSid") or None
    expected_account = state.gateway.settings.twilio_account_sid
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
    sid = call.carrier_call_id
    if not sid:
        return _forbidden("no CallSid", request)
    answers = state.gateway.replay.twilio.answers
    pending = answers.get(replay_key)
    if pending is not None:
        return await _same_answer(pending, sid)
    # Copies of this request reaching this node from now on wait for its answer (no await
    # between the check above and this line); copies reaching another node lose the claim.
    answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
    answers[replay_key] = answer
    try:
        response = await _claimed_answer(state, call, replay_key, request)
    except BaseException:
        answer.cancel()
        raise
    finally:
        answers.pop(replay_key, None)
    answer.set_result(response)
    return response


async def _claimed_answer(
    state: AppState, call: IncomingCall, replay_key: str, request: Request
) -> Response:
    """The answer to a voice webhook that is not a copy being prepared on this node: claimed
    across the cluster first (the signed request once; the CallSid once, unless our own fresh
    DTMF redirect), the claims given back when the work fails so Twilio's retry passes."""
    sid = call.carrier_call_id
    cluster = state.gateway.cluster
    requests, calls = cluster.claims(REQUEST_CLAIMS), cluster.claims(CALL_CLAIMS)
    try:
        if not await requests.claim(replay_key, ttl_s=REQUEST_MEMORY_S):
            return _forbidden("replayed request", request)
        new_call = await calls.claim(sid, ttl_s=TWILIO_CALL_MEMORY_S)
    except ClusterUnavailable as exc:
        return _cluster_down(exc)
    resume = request.query_params.get("resume")
    if not new_call and not resume_is_fresh(resume, window_s=RESUME_WINDOW_S):
        return _forbidden(f"replay of CallSid {sid}, which was already answered", request)
    try:
        twiml = await _answer(state, call, restream=not new_call)
    except BaseException:
        # A failure is not remembered: Twilio's retry passes.
        with contextlib.suppress(ClusterUnavailable):
            await requests.release(replay_key)
            if new_call:
                await calls.release(sid)
        raise
    return Response(twiml, media_type=_XML)


async def _claim_once(
    state: AppState, request: Request, *claims: tuple[str, str]
) -> Response | None:
    """Claim each ``(key, refusal)`` in the cluster, in order: a signed request is accepted
    once by any node. Returns the answer for a request refused (that refusal, or 503 without
    Redis), None when every key was claimed."""
    guard = state.gateway.cluster.claims(REQUEST_CLAIMS)
    try:
        for key, refusal in claims:
            if not await guard.claim(key, ttl_s=REQUEST_MEMORY_S):
                return _forbidden(refusal, request)
    except ClusterUnavailable as exc:
        return _cluster_down(exc)
    return None


@contextlib.asynccontextmanager
async def _given_back_on_failure(state: AppState, *keys: str) -> AsyncIterator[None]:
    """Release the claimed ``keys`` when the work inside fails, so the carrier's retry of the
    same request is accepted rather than refused as a replay."""
    try:
        yield
    except BaseException:
        guard = state.gateway.cluster.claims(REQUEST_CLAIMS)
        with contextlib.suppress(ClusterUnavailable):
            for key in keys:
                await guard.release(key)
        raise


def _cluster_down(exc: ClusterUnavailable) -> Response:
    """503 while the shared state cannot be reached: Twilio retries or uses its fallback URL."""
    logger.error("Twilio webhook refused: %s", exc)
    return Response(status_code=503, content="cluster state unavailable", media_type="text/plain")


async def _same_answer(pending: asyncio.Future[Response], sid: str) -> Response:
    """A copy of a voice webhook still being prepared: wait, and answer what the first gets."""
    logger.info("voice webhook for %s repeated while it is prepared: one answer for both", sid)
    try:
        return await asyncio.shield(pending)
    except asyncio.CancelledError:
        if not pending.cancelled():
            raise  # this request itself is being cancelled
        return Response(status_code=503, content="try again", media_type="text/plain")


async def _answer(
    state: AppState, call: IncomingCall, *, resume: bool = False, restream: bool = False
) -> str:
    """Prepare ``call`` (``resume``: again, after its media leg died) and return the TwiML
    that connects (or refuses) it; ``restream`` (our DTMF redirect): a live call of this node
    waiting for its next stream is connected again as it is (bridge/restream.py)."""
    calls = state.calls
    live = (
        calls.restreaming(_CARRIER, call.carrier_call_id)
        if restream and isinstance(calls, CallManager)
        else None
    )
    if live is not None:
        logger.info("call %s: its stream goes on after the digits", live, extra={"call_id": live})
        return _connect(state, live, call.carrier_call_id)
    if resume:
        assert isinstance(state.calls, CallManager)
        prepared = await state.calls.resume(call)
        if not prepared.accepted:
            logger.info("call %s not resumed: %s", call.call_id, prepared.reason)
            return hangup_twiml()
    else:
        prepared = await state.calls.prepare(call)
    if not prepared.accepted:
        logger.info("call %s not accepted: %s", call.carrier_call_id, prepared.reason)
        if prepared.busy:
            return busy_twiml()  # a busy signal: the caller's carrier may try elsewhere
        return reject_twiml("We are sorry, no agent can take your call right now. Goodbye.")
    logger.info(
        "answering Twilio call %s as %s",
        call.carrier_call_id,
        prepared.call_id,
        extra={"call_id": prepared.call_id},
    )
    return _connect(state, prepared.call_id, call.carrier_call_id)


def _connect(state: AppState, call_id: str, sid: str) -> str:
    """``<Connect><Stream>`` of ``call_id`` with a media token bound to the CallSid ``sid``."""
    token = state.gateway.signer.sign(call_id, _CARRIER.value, carrier_call_id=sid)
    stream_url = f"{state.gateway.settings.public_ws_url}{MEDIA_PATH}"
    action = resume_url(state.gateway.settings, call_id)
    return stream_twiml(stream_url, {"call_id": call_id, "token": token}, action=action)


def resume_url(settings: Settings, call_id: str) -> str:
    """Where Twilio asks for what to do when ``call_id``'s stream ends (``<Connect action>``,
    or a drained call's REST ``Url``); a fresh ``leg`` value each time, so the request of a
    later leg is not a replay of an earlier one."""
    query = urlencode({"call_id": call_id, "leg": secrets.token_hex(6)})
    return f"{settings.public_url or ''}{RESUME_PATH}?{query}"


@twilio_router.post("/resume")
async def resume_webhook(request: Request) -> Response:
    """Twilio's ``<Connect action>`` request, sent when a call's stream ended: a call
    switchboard did not end is restored on this node (``CallManager.resume``) and connected to
    a new stream here; anything else is answered ``<Hangup/>`` (bridge/resume.py)."""
    state = get_state(request)
    if missing := _missing(state):
        return _unconfigured(missing)
    verified = await _verified_form(request, state)
    if isinstance(verified, str):
        return _forbidden(verified, request)
    form, replay_key = verified
    sid, call_id = _field(form, "CallSid"), request.query_params.get("call_id", "")
    if not sid or not call_id:
        return _forbidden("no CallSid or call_id", request)
    if refused := await _claim_once(state, request, (replay_key, "replayed request")):
        return refused
    if _field(form, "CallStatus") != "in-progress" or not isinstance(state.calls, CallManager):
        return Response(hangup_twiml(), media_type=_XML)  # the call is over: nothing to resume
    direction = _field(form, "Direction", "inbound")
    call = IncomingCall(
        carrier=_CARRIER,
        carrier_call_id=sid,
        from_number=_field(form, "From"),
        to_number=_field(form, "To"),
        direction=CallDirection.INBOUND if direction == "inbound" else CallDirection.OUTBOUND,
        account_id=_field(form, "AccountSid") or None,
        call_id=call_id,
    )
    try:
        async with _given_back_on_failure(state, replay_key):
            twiml = await _answer(state, call, resume=True)
    except ClusterUnavailable as exc:
        return _cluster_down(exc)
    return Response(twiml, media_type=_XML)


@twilio_router.post("/status")
async def status_webhook(request: Request) -> Response:
    """Twilio status callbacks → ``calls.update_status``; answers 204."""
    state = get_state(request)
    if missing := _missing(state):
        return _unconfigured(missing)
    verified = await _verified_form(request, state)
    if isinstance(verified, str):
        return _forbidden(verified, request)
    form, replay_key = verified
    sid, status = _field(form, "CallSid"), _field(form, "CallStatus")
    if not sid or not status:
        return _forbidden("no CallSid/CallStatus", request)
    seq_key = ReplayGuard.key("status", sid, status, _field(form, "SequenceNumber"))
    duplicate = f"duplicate status {status} for {sid}"
    claims = (replay_key, "replayed request"), (seq_key, duplicate)
    if refused := await _claim_once(state, request, *claims):
        return refused
    details = {
        name: value
        for name, value in form.items()
        if isinstance(value, str) and name not in ("CallSid", "CallStatus")
    }
    async with _given_back_on_failure(state, replay_key, seq_key):
        await status_to_owner(state, sid, status, details)
    return Response(status_code=204)


@twilio_router.post("/amd")
async def amd_webhook(request: Request) -> Response:
    """The ``AsyncAmdStatusCallback`` of an outbound call placed with machine detection
    (``AnsweredBy``) → ``calls.machine_detection``; answers 204."""
    state = get_state(request)
    if missing := _missing(state):
        return _unconfigured(missing)
    verified = await _verified_form(request, state)
    if isinstance(verified, str):
        return _forbidden(verified, request)
    form, replay_key = verified
    sid, answered_by = _field(form, "CallSid"), _field(form, "AnsweredBy")
    if not sid or not answered_by:
        return _forbidden("no CallSid/AnsweredBy", request)
    # the cluster's claims, as for the other webhooks: a replay to another node is refused too
    if refused := await _claim_once(state, request, (replay_key, "replayed request")):
        return refused
    async with _given_back_on_failure(state, replay_key):
        verdict = twilio_verdict(answered_by)
        await state.calls.machine_detection(_CARRIER, sid, verdict, answered_by[:40])
    return Response(status_code=204)


# -- media websocket -------------------------------------------------------------------------------
async def _reject(ws: WebSocket, reason: str) -> None:
    logger.warning("closing Twilio media socket: %s", reason)
    signature_failed(ws)  # a bad signature or token, another call's id, no start: all count
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
    ws_base = state.gateway.settings.public_ws_url or ""
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
    if await close_if_throttled(ws, _CARRIER.value):
        return
    state = get_state(ws)
    unconfigured = bool(_missing(state))
    why = None if unconfigured else _upgrade_ok(ws, state)  # before accepting anything
    await ws.accept()  # accepted only to say why in a close frame (Twilio's debugger shows it)
    if unconfigured:
        await ws.close(code=1011, reason="twilio not configured")
        return
    if why is not None:
        await _reject(ws, why)
        return
    codec = TwilioMediaCodec()
    timeout = state.gateway.settings.media_start_timeout_s
    started: StreamStarted | None = None
    try:
        with anyio.move_on_after(timeout):
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
        claims = state.gateway.signer.verify(params.get("token"), carrier=_CARRIER.value)
    except SignatureError as exc:
        await _reject(ws, f"media token rejected: {exc}")
        return
    if params.get("call_id") != claims.call_id or started.call_id != claims.carrier_call_id:
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
            call_id=claims.call_id,
            carrier=_CARRIER,
            codec=codec,
            socket=StarletteMediaSocket(
                ws, idle_timeout_s=state.gateway.settings.media_idle_timeout_s
            ),
            started=started,
        )
    except CallerDisconnected:
        logger.info(
            "Twilio media socket for call %s disconnected",
            claims.call_id,
            extra={"call_id": claims.call_id},
        )
