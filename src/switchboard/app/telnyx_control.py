"""Telnyx Call Control for one app: webhook events in order per call, answering, streaming.

Theory of operation
-------------------
The webhook route (``app/telnyx.py``) verifies and de-duplicates each event, then (through
``app/telnyx_cluster.py``, on the node holding the call) hands it to
:meth:`TelnyxRuntime.dispatch`, which queues it on its call's worker and returns at once: Call
Control commands run in the background, in arrival order per call.

* ``call.initiated`` incoming → ``calls.prepare`` → ``answer`` → ``streaming_start``
  (bidirectional ``rtp``; the agent's ``carrier_codec``, else PCMU 8 kHz, or L16 16 kHz when
  the prepared call is ``wideband``; OPUS and G722 are transcoded by the media codec) to
  ``wss://<public>/telnyx/media?token=<signed call id>``. A refused call is hung up.
* ``call.initiated`` outgoing (we dialled; our call id rides in ``client_state``) →
  ``calls.prepare``; its stream starts on ``call.answered``.
* ``call.answered`` / ``call.hangup`` → ``calls.update_status`` ("answered" / "completed" with
  the hangup cause), ``call.dtmf.received`` → ``calls.record_dtmf``, ``call.machine.*`` →
  ``calls.machine_detection`` (``telephony/amd.py``); ``streaming.failed``
  hangs the call up (no agent can be heard); ``streaming.stopped`` of a live call whose stream
  we did not stop resumes it on this node (``app/telnyx_resume.py``). Other events are
  acknowledged and logged. Events of a warm transfer's new leg (``client_state``
  ``warm:…``) go to ``gateway.warm_legs`` (``telephony/telnyx/warm.py``).

The REST adapter is the gateway's (one per app, shared with the call manager); the event ids
already seen are the gateway's replay guard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from switchboard.app.telnyx_resume import note_stream, resume_stream
from switchboard.errors import ConfigError
from switchboard.gateway import Gateway
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.amd import TELNYX_AMD_EVENTS, telnyx_verdict
from switchboard.telephony.base import (
    CallDirection,
    CallHandler,
    IncomingCall,
    PreparedCall,
    TelephonyType,
)
from switchboard.telephony.telnyx import TelnyxAdapter
from switchboard.telephony.telnyx.rest import StreamCodec
from switchboard.telephony.telnyx.warm import is_warm_leg
from switchboard.telephony.telnyx.webhooks import (
    TelnyxEvent,
    TelnyxSignatureVerifier,
    decode_client_state,
    encode_client_state,
)

__all__ = ["TelnyxCall", "TelnyxRuntime"]

logger = logging.getLogger(__name__)

_TELNYX = TelephonyType.TELNYX


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
    #: the stream is being stopped on purpose (handed to another node): no resume here
    stopping: bool = False

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
    """Per-app Telnyx state: the webhook verifier, live calls, per-call ordered workers.

    Args:
        gateway: the app's services (settings, signer, the Telnyx adapter, seen event ids).
        calls: the call handler the events are reported to.

    Attributes:
        adapter: the gateway's Telnyx adapter, once a webhook found Telnyx configured.
        seen: webhook event ids already processed (the gateway's replay guard).
        start_timeout_s: how long a media socket may wait for ``start``.
        l16_byteorder: L16 byte order on Telnyx's wire (UNCONFIRMED; RFC 3551 says "big").
        shutdown_timeout_s: how long ``aclose`` lets queued commands finish.
    """

    def __init__(self, gateway: Gateway, calls: CallHandler) -> None:
        self.gateway = gateway
        self.handler = calls
        self.adapter: TelnyxAdapter | None = None
        self.seen = gateway.replay.telnyx
        self.start_timeout_s = gateway.settings.media_start_timeout_s
        self.l16_byteorder: Literal["big", "little"] = "big"
        self.shutdown_timeout_s = 5.0
        self.calls: dict[str, TelnyxCall] = {}
        self.by_call_id: dict[str, TelnyxCall] = {}
        self._verifier: TelnyxSignatureVerifier | None = None
        self._queues: dict[str, list[TelnyxEvent]] = {}
        self.resuming: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: called with an event whose handling failed (the cluster forgets its id, so a
        #: retry of it is let through)
        self.on_failure: Callable[[TelnyxEvent], Awaitable[None]] | None = None

    def check_configured(self) -> TelnyxSignatureVerifier:
        """The webhook verifier; raises ConfigError (→ 503) naming missing variables."""
        settings = self.gateway.settings
        required = (
            ("TELNYX_API_KEY", settings.telnyx_api_key),
            ("TELNYX_PUBLIC_KEY", settings.telnyx_public_key),
            ("SWITCHBOARD_PUBLIC_URL", settings.public_url),
        )
        missing = tuple(name for name, value in required if not value)
        if missing:
            raise ConfigError(
                f"Telnyx is not configured: set {', '.join(missing)}", missing=missing
            )
        if self._verifier is None:
            self._verifier = TelnyxSignatureVerifier(str(settings.telnyx_public_key))
        if self.adapter is None:
            adapter = self.gateway.carriers.get(_TELNYX)
            if not isinstance(adapter, TelnyxAdapter):  # a replaced factory must stream too
                raise ConfigError("Telnyx call control is unavailable: no TelnyxAdapter")
            self.adapter = adapter
        return self._verifier

    async def aclose(self) -> None:
        """Wait for queued commands (the gateway closes the adapter after the calls end)."""
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=self.shutdown_timeout_s)
            for task in pending:
                logger.warning("cancelling a Telnyx command still running at shutdown")
                task.cancel()
            if pending:
                await asyncio.wait(pending)

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
                if self.on_failure is not None:
                    await self.on_failure(event)
        del self._queues[key]  # no await since the emptiness check: no event can slip in

    async def handle(self, event: TelnyxEvent) -> None:
        """Act on one verified, first-seen webhook event."""
        ccid = event.call_control_id or ""
        if is_warm_leg(event):  # a warm transfer's new leg: its runner reads these
            self.gateway.warm_legs.observe(event)
            return
        calls = self.handler
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
            case amd if amd in TELNYX_AMD_EVENTS:  # answering-machine detection (outbound)
                result = event.text("result")
                verdict = telnyx_verdict(amd, result)
                await calls.machine_detection(_TELNYX, ccid, verdict, result)
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
                self.gateway.warm_legs.leaving.discard(ccid)
            case "streaming.started":
                url = event.text("stream_url").partition("?")[0]  # never log the token
                logger.info("Telnyx %s: %s", event.event_type, url)
            case "streaming.stopped":
                await self._on_stream_stopped(event, ccid)
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
        prepared = await self.handler.prepare(incoming)
        if not prepared.accepted:
            logger.info("Telnyx call %s refused: %s", ccid, prepared.reason)
            if prepared.busy and not outgoing:  # unanswered: a busy signal, nothing billed
                await self.adapter.reject_call(ccid, cause="USER_BUSY")
            else:
                await self.adapter.hang_up(ccid)
            return
        call = self.remember(ccid, prepared, incoming.direction)
        if not outgoing:
            await self.adapter.answer_call(ccid, client_state=encode_client_state(call.call_id))
            await self._start_stream(call)

    async def _on_stream_stopped(self, event: TelnyxEvent, ccid: str) -> None:
        """The stream ended: when we did not stop it and the call is up, resume it here."""
        url = event.text("stream_url").partition("?")[0]  # never log the token
        logger.info("Telnyx streaming.stopped: %s", url)
        known = self.calls.get(ccid)
        if known is not None and known.stopping:
            return  # our own streaming_stop / hand-over
        if ccid in self.gateway.warm_legs.leaving:
            return  # a warm transfer bridged the caller: the agent has left
        call_id = known.call_id if known is not None else None
        call_id = call_id or decode_client_state(event.text("client_state"))
        if not call_id:
            return
        if known is not None:
            known.streaming = False
        outgoing = event.text("direction") == "outgoing"
        await resume_stream(
            self,
            ccid,
            call_id,
            from_number=event.text("from"),
            to_number=event.text("to"),
            direction=CallDirection.OUTBOUND if outgoing else CallDirection.INBOUND,
            stopped_url=event.text("stream_url") or None,
        )

    def remember(self, ccid: str, prepared: PreparedCall, direction: CallDirection) -> TelnyxCall:
        """Note a prepared call of this node (its stream's codec and rate)."""
        call = TelnyxCall(
            ccid,
            prepared.call_id,
            direction,
            wideband=prepared.wideband,
            codec=prepared.carrier_codec,
            pcm_rate=prepared.pcm_rate,
        )
        self.calls[ccid] = call
        self.by_call_id[call.call_id] = call
        return call

    async def start_stream(self, call: TelnyxCall) -> None:
        """``streaming_start`` to this node's media URL with a fresh token for the call."""
        call.streaming = False
        await self._start_stream(call)

    async def _start_stream(self, call: TelnyxCall) -> None:
        if call.streaming:
            return
        assert self.adapter is not None
        base = self.gateway.settings.public_ws_url
        token = self.gateway.signer.sign(
            call.call_id, _TELNYX.value, carrier_call_id=call.call_control_id
        )
        spec = call.audio
        url = f"{base}/telnyx/media?token={quote(token, safe='')}"
        await note_stream(self.gateway, call.call_control_id, url)  # before: it may stop at once
        await self.adapter.start_streaming(
            call.call_control_id,
            stream_url=url,
            codec=call.stream_codec,
            sample_rate=spec.sample_rate,
        )
        call.streaming = True
