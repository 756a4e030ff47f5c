"""Telnyx routes: Call Control webhooks (``POST /telnyx/webhook``) and media (``WS /telnyx/media``).

Theory of operation
-------------------
A webhook is verified (Ed25519 over ``"{telnyx-timestamp}|{raw body}"``, 300 s window) and
de-duplicated by event id (Telnyx retries), then queued on its call's worker and acknowledged at
once: Call Control commands run in the background, in arrival order per call.

* ``call.initiated`` incoming → ``calls.prepare`` → ``answer`` → ``streaming_start``
  (bidirectional ``rtp``; the agent's ``carrier_codec``, else PCMU 8 kHz, or L16 16 kHz when
  the prepared call is ``wideband``; OPUS and G722 are transcoded by the media codec) to
  ``wss://<public>/telnyx/media?token=<signed call id>``. A refused call is hung up.
* ``call.initiated`` outgoing (we dialled; our call id rides in ``client_state``) →
  ``calls.prepare``; its stream starts on ``call.answered``.
* ``call.answered`` / ``call.hangup`` → ``calls.update_status`` ("answered" / "completed" with
  the hangup cause), ``call.dtmf.received`` → ``calls.record_dtmf``; ``streaming.failed``
  hangs the call up (no agent can be heard). Other events are acknowledged and logged.

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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Request, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from switchboard.app.media_socket import StarletteMediaSocket
from switchboard.app.metrics_api import metrics_of
from switchboard.app.state import AppState, get_state
from switchboard.app.throttle import close_if_throttled, raise_if_throttled, signature_failed
from switchboard.errors import CallerDisconnected, ConfigError, RemoteProtocolError, SignatureError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import CallDirection, IncomingCall, StreamStarted, TelephonyType
from switchboard.telephony.telnyx import TelnyxAdapter, create_adapter
from switchboard.telephony.telnyx.media import TelnyxMediaCodec
from switchboard.telephony.telnyx.rest import StreamCodec
from switchboard.telephony.telnyx.webhooks import (
    SeenEvents,
    TelnyxEvent,
    TelnyxSignatureVerifier,
    decode_client_state,
    encode_client_state,
    parse_event,
)

__all__ = ["TelnyxCall", "TelnyxRuntime", "telnyx_router", "telnyx_runtime"]

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, finish queued Call Control commands and close the Telnyx HTTP client."""
    yield
    runtime = app.state.switchboard.extras.get("telnyx")
    if isinstance(runtime, TelnyxRuntime):
        await runtime.aclose()


telnyx_router = APIRouter(tags=["telnyx"], lifespan=_lifespan)
_TELNYX = TelephonyType.TELNYX
_REQUIRED = (
    ("TELNYX_API_KEY", "telnyx_api_key"),
    ("TELNYX_PUBLIC_KEY", "telnyx_public_key"),
    ("SWITCHBOARD_PUBLIC_URL", "public_url"),
)


@dataclass
class TelnyxCall:
    """What the routes remember about a live Telnyx call."""

    call_control_id: str
    call_id: str
    direction: CallDirection
    wideband: bool = False
    streaming: bool = False
    #: the agent's ``carrier_codec`` in Telnyx's spelling (``OPUS``...), None for the default
    codec: str | None = None
    #: the provider's PCM input rate: an OPUS stream is decoded/encoded at it (PreparedCall)
    pcm_rate: int | None = None

    @property
    def stream_codec(self) -> StreamCodec:
        """The codec asked for both ways: the agent's, else L16 when wideband, else PCMU."""
        match self.codec:
            case "PCMU" | "PCMA" | "L16" | "OPUS" | "G722":
                return self.codec
        return "L16" if self.wideband else "PCMU"

    @property
    def audio(self) -> AudioSpec:
        """The format asked for both ways on the stream (PCM16 for the codecs we transcode)."""
        if self.stream_codec in ("PCMU", "PCMA"):
            fmt = AudioFormat.ULAW if self.stream_codec == "PCMU" else AudioFormat.ALAW
            return AudioSpec(fmt, 8000)
        return AudioSpec(AudioFormat.PCM16, 16000)


class TelnyxRuntime:
    """Per-app Telnyx state: verifier, adapter, seen event ids, per-call ordered workers.

    Attributes:
        start_timeout_s: how long a media socket may wait for ``start``.
        l16_byteorder: L16 byte order on Telnyx's wire (UNCONFIRMED; RFC 3551 says "big").
        shutdown_timeout_s: how long ``aclose`` lets queued commands finish.
    """

    def __init__(self, state: AppState, *, adapter: TelnyxAdapter | None = None) -> None:
        self.state = state
        self.adapter = adapter
        self.seen = SeenEvents()
        self.start_timeout_s = state.settings.media_start_timeout_s
        self.l16_byteorder: Literal["big", "little"] = "big"
        self.shutdown_timeout_s = 5.0
        self.calls: dict[str, TelnyxCall] = {}
        self.by_call_id: dict[str, TelnyxCall] = {}
        self._verifier: TelnyxSignatureVerifier | None = None
        self._queues: dict[str, list[TelnyxEvent]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def check_configured(self) -> TelnyxSignatureVerifier:
        """The webhook verifier; raises ConfigError (→ 503) naming missing variables."""
        settings = self.state.settings
        missing = tuple(name for name, attr in _REQUIRED if not getattr(settings, attr))
        if missing:
            raise ConfigError(
                f"Telnyx is not configured: set {', '.join(missing)}", missing=missing
            )
        if self._verifier is None:
            self._verifier = TelnyxSignatureVerifier(str(settings.telnyx_public_key))
        if self.adapter is None:
            self.adapter = create_adapter(settings)
        return self._verifier

    async def aclose(self) -> None:
        """Wait for queued commands, then close the HTTP client."""
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=self.shutdown_timeout_s)
            for task in pending:
                logger.warning("cancelling a Telnyx command still running at shutdown")
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self.adapter is not None:
            await self.adapter.aclose()

    # -- ordered per-call processing -------------------------------------------------------------
    def dispatch(self, event: TelnyxEvent) -> None:
        """Queue ``event`` on its call's worker (started when idle)."""
        key = event.call_control_id or ""
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(event)
            return
        self._queues[key] = [event]
        task = asyncio.create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        while queue:
            event = queue.pop(0)
            try:
                await self.handle(event)
            except Exception:
                logger.exception("Telnyx %s for call %s failed", event.event_type, key)
        del self._queues[key]  # no await since the emptiness check: no event can slip in

    async def handle(self, event: TelnyxEvent) -> None:
        """Act on one verified, first-seen webhook event."""
        ccid = event.call_control_id or ""
        calls = self.state.calls
        known = self.calls.get(ccid)
        logger.info(
            "Telnyx %s for call %s",
            event.event_type,
            ccid,
            extra={"call_id": known.call_id} if known is not None else None,
        )
        match event.event_type:
            case "call.initiated":
                await self._on_initiated(event, ccid)
            case "call.answered":
                await calls.update_status(_TELNYX, ccid, "answered")
                call = self.calls.get(ccid)
                if call is not None and call.direction is CallDirection.OUTBOUND:
                    await self._start_stream(call)
            case "call.dtmf.received":
                await calls.record_dtmf(_TELNYX, ccid, event.text("digit"))
            case "call.hangup":
                await calls.update_status(
                    _TELNYX,
                    ccid,
                    "completed",
                    cause=event.text("hangup_cause", "unspecified"),
                    source=event.text("hangup_source", "unknown"),
                )
                call = self.calls.pop(ccid, None)
                if call is not None:
                    self.by_call_id.pop(call.call_id, None)
            case "streaming.started" | "streaming.stopped":
                url = event.text("stream_url").partition("?")[0]  # never log the token
                logger.info("Telnyx %s: %s", event.event_type, url)
            case "streaming.failed":
                logger.warning(
                    "Telnyx stream failed for %s: %s", ccid, event.text("failure_reason")
                )
                assert self.adapter is not None
                await self.adapter.hang_up(ccid)
            case other:
                logger.info("ignoring Telnyx event %s", other)

    async def _on_initiated(self, event: TelnyxEvent, ccid: str) -> None:
        assert self.adapter is not None
        outgoing = event.text("direction") == "outgoing"
        incoming = IncomingCall(
            carrier=_TELNYX,
            carrier_call_id=ccid,
            from_number=event.text("from"),
            to_number=event.text("to"),
            direction=CallDirection.OUTBOUND if outgoing else CallDirection.INBOUND,
            account_id=event.text("connection_id") or None,
            call_id=decode_client_state(event.text("client_state")) if outgoing else None,
        )
        prepared = await self.state.calls.prepare(incoming)
        if not prepared.accepted:
            logger.info("Telnyx call %s refused: %s", ccid, prepared.reason)
            if prepared.busy and not outgoing:  # unanswered: a busy signal, nothing billed
                await self.adapter.reject_call(ccid, cause="USER_BUSY")
            else:
                await self.adapter.hang_up(ccid)
            return
        call = TelnyxCall(
            ccid,
            prepared.call_id,
            incoming.direction,
            wideband=prepared.wideband,
            codec=prepared.carrier_codec,
            pcm_rate=prepared.pcm_rate,
        )
        self.calls[ccid] = call
        self.by_call_id[call.call_id] = call
        if not outgoing:
            await self.adapter.answer_call(ccid, client_state=encode_client_state(call.call_id))
            await self._start_stream(call)

    async def _start_stream(self, call: TelnyxCall) -> None:
        if call.streaming:
            return
        assert self.adapter is not None
        base = self.state.settings.public_ws_url
        token = self.state.signer.sign(
            call.call_id, _TELNYX.value, carrier_call_id=call.call_control_id
        )
        spec = call.audio
        await self.adapter.start_streaming(
            call.call_control_id,
            stream_url=f"{base}/telnyx/media?token={quote(token, safe='')}",
            codec=call.stream_codec,
            sample_rate=spec.sample_rate,
        )
        call.streaming = True


def telnyx_runtime(state: AppState) -> TelnyxRuntime:
    """The app's :class:`TelnyxRuntime` (created on first use)."""
    runtime = state.extras.get("telnyx")
    if runtime is None:
        runtime = state.extras["telnyx"] = TelnyxRuntime(state)
    assert isinstance(runtime, TelnyxRuntime)
    return runtime


@telnyx_router.post("/telnyx/webhook")
async def telnyx_webhook(request: Request) -> dict[str, str]:
    """Verify, de-duplicate and queue one Call Control webhook; answers at once."""
    runtime = telnyx_runtime(get_state(request))
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
    if not runtime.seen.check_and_add(event.id):
        logger.info("duplicate Telnyx event %s (%s) ignored", event.id, event.event_type)
        return {"status": "duplicate"}
    runtime.dispatch(event)
    return {"status": "accepted"}


@telnyx_router.websocket("/telnyx/media")
async def telnyx_media(websocket: WebSocket) -> None:
    """Telnyx's media stream: token checked at the upgrade, then the call manager runs it."""
    if await close_if_throttled(websocket, _TELNYX.value):
        return
    state = get_state(websocket)
    try:
        claims = state.signer.verify(websocket.query_params.get("token"), carrier=_TELNYX.value)
    except SignatureError as exc:
        logger.warning("Telnyx media socket refused: %s", exc)
        signature_failed(websocket)
        if (metrics := metrics_of(state)) is not None:
            metrics.signature_rejected(_TELNYX.value, "media token")
        await websocket.accept()
        await websocket.close(code=1008, reason="invalid media token")
        return
    runtime = telnyx_runtime(state)
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
        socket = StarletteMediaSocket(websocket)
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
