"""A simulated Telnyx network: Call Control REST API, signed webhooks, the caller's media leg.

Written from ``docs/wire/telnyx.md#webhooks``, ``docs/wire/telnyx.md#call-commands`` and
``docs/wire/telnyx.md#errors`` (vendor page:
https://developers.telnyx.com/docs/voice/programmable-voice/sending-commands) against plain
dicts; it imports nothing from the client side.

Theory of operation
-------------------
Each :class:`EmulatedCall` moves ``parked`` (incoming) / ``bridging`` (outgoing) → ``answered``
→ ``hangup``; every command on an ended call gets 422 with code ``90018``, as Telnyx answers.

* Inbound: :meth:`TelnyxEmulator.place_inbound_call` sends ``call.initiated`` (incoming,
  parked). ``answer`` → ``call.answered`` (and a media leg when the answer carried a
  ``stream_url``). ``streaming_start`` → ``streaming.started`` and the caller's
  :class:`CallerMediaLeg` dials the ``stream_url``.
* Outbound: ``POST /v2/calls`` → ``call.initiated`` (outgoing, bridging); the callee answers
  after ``answer_delay_ms`` → ``call.answered`` (+ a media leg if the dial had ``stream_url``).
* A lost stream: when the app's media socket closes without a ``streaming_stop`` (its node
  died, the network cut it), the call stays up as on Telnyx: ``streaming.stopped`` is sent and
  ``streaming_start`` on the answered call opens a new leg (the caller's audio goes on from
  where the wall clock is: what was said meanwhile is lost). A caller left without a stream for
  ``stream_loss_patience_ms`` hangs up.
* The end: the caller hangs up when done (``stop`` on the socket, then ``streaming.stopped``
  and ``call.hangup`` with ``hangup_source: caller``), or the app sends ``hangup`` (the same,
  with ``hangup_source: callee``). ``transfer`` hands the caller away: the leg ends likewise.
* Warm transfers: ``playback_start``, ``speak`` and ``bridge`` (``bridging.py``) play to an
  answered leg or join two; with ``callee_answers=False`` a dialled call rings for its
  ``timeout_secs`` and ends ``timeout``.

Webhooks go out signed, in order, through one :class:`WebhookSender`; a call's report is final
once its ``call.hangup`` was delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from switchboard.emulators.answering_machine import AnsweringMachine
from switchboard.emulators.loopback import LoopbackServer
from switchboard.emulators.telnyx.amd import MODES as AMD_MODES
from switchboard.emulators.telnyx.amd import amd_reports, report_amd
from switchboard.emulators.telnyx.audio import AudioSource, WireFormat, load_pcm16
from switchboard.emulators.telnyx.bridging import Heard, bridge, playback, speak
from switchboard.emulators.telnyx.caller import CallerMediaLeg, MediaLeg, MediaLegFactory
from switchboard.emulators.telnyx.calls import EmulatedCall
from switchboard.emulators.telnyx.control import control_routes
from switchboard.emulators.telnyx.responses import (
    CALL_ENDED,
    REJECT_CAUSES,
    auth_failed,
    check_stream,
    error_response,
    json_object,
    not_found,
    ok_response,
)
from switchboard.emulators.telnyx.webhooks import WebhookSender

__all__ = ["TelnyxEmulator"]

logger = logging.getLogger(__name__)


class TelnyxEmulator:
    """Fake Telnyx: ``base_url`` works as ``TELNYX_BASE_URL``, ``public_key_b64`` as
    ``TELNYX_PUBLIC_KEY``.

    Args:
        host, port: where the REST API listens (port 0: any free port).
        api_key: the only Bearer key accepted (401 otherwise).
        webhook_url: the app's ``/telnyx/webhook`` (settable later, or per call).
        realtime: run call clocks in real time; otherwise ``speed`` times faster.
        speed: call-clock speed-up used when ``realtime`` is False.
        private_key_b64: a fixed Ed25519 seed, so a long-running app can keep its public key.
        audio: what callers/callees say by default (WAV path or bytes; 1 s silence when None).
        tail_ms, max_call_ms: the caller hangs up after this much silence / call time.
        min_tail_s: wall-clock floor on ``tail_ms`` (answers in flight on a fast clock).
        answer_delay_ms: how long a dialled callee rings before answering.
        l16_byteorder: L16 byte order on the wire (UNCONFIRMED for Telnyx; RFC 3551: big).
        duplicate_webhooks: deliver every webhook twice (retries), to exercise idempotency.
        connection_id: the connection inbound calls arrive on.
        stream_loss_patience_ms: how long a caller whose stream was lost waits for a new one.
        callee_answers: whether dialled calls are answered; if not, they ring for the dial's
            ``timeout_secs`` (default 30) and end with ``hangup_cause`` ``timeout``.
        talk_s: how long a bridged person talks before hanging up (``bridging.py``).
        media_leg_factory: builds the caller's media leg instead of the default
            :class:`CallerMediaLeg` (WAV caller); e.g. the load test's tagged-frame caller.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "KEY_EMULATOR",
        webhook_url: str | None = None,
        realtime: bool = True,
        speed: float = 20.0,
        private_key_b64: str | None = None,
        audio: AudioSource = None,
        tail_ms: int = 400,
        min_tail_s: float = 0.3,
        max_call_ms: int = 60_000,
        answer_delay_ms: int = 200,
        l16_byteorder: str = "big",
        duplicate_webhooks: bool = False,
        connection_id: str = "1684641123236054244",
        media_leg_factory: MediaLegFactory | None = None,
        answering_machine: AnsweringMachine | None = None,
        stream_loss_patience_ms: int = 10_000,
        callee_answers: bool = True,
        talk_s: float = 1.0,
    ) -> None:
        self.api_key = api_key
        #: who answers dialled calls: this machine, or (None) a person saying ``audio``
        self.answering_machine = answering_machine
        self.webhook_url = webhook_url
        self.speed = 1.0 if realtime else speed
        self.audio = audio
        self.tail_ms = tail_ms
        self.min_tail_s = min_tail_s
        self.max_call_ms = max_call_ms
        self.stream_loss_patience_ms = stream_loss_patience_ms
        self.answer_delay_ms = answer_delay_ms
        self.l16_byteorder: Any = "little" if l16_byteorder == "little" else "big"
        self.connection_id = connection_id
        self.media_leg_factory = media_leg_factory
        self._leg_factories: dict[str, MediaLegFactory] = {}  # per-call overrides
        self.user_id = secrets.token_hex(8).upper()
        self.calls: dict[str, EmulatedCall] = {}
        self.callee_answers, self.talk_s = callee_answers, talk_s
        #: what commands played to each call (``playback_start``, ``speak``) and its bridge
        self.heard: dict[str, Heard] = {}
        self._rest_violations: list[str] = []
        #: Every command as ``(call_control_id or "", action, body)``.
        self.commands: list[tuple[str, str, dict[str, Any]]] = []
        self.sender = WebhookSender(private_key_b64=private_key_b64, duplicate=duplicate_webhooks)
        self._tasks: set[asyncio.Task[Any]] = set()
        app = Starlette(
            routes=[
                Route("/v2/calls", self._dial, methods=["POST"]),
                Route("/v2/calls/{ccid}", self._get_call, methods=["GET"]),
                Route("/v2/calls/{ccid}/actions/{action}", self._action, methods=["POST"]),
                *control_routes(self),
            ]
        )
        self._server = LoopbackServer(app, host=host, port=port)

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def violations(self) -> list[str]:
        """Every protocol violation by the app, REST and media (tests assert this is empty)."""
        per_call = [v for call in self.calls.values() for v in call.violations]
        return self._rest_violations + per_call

    @property
    def public_key_b64(self) -> str:
        return self.sender.public_key_b64

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Webhook headers for ``body`` signed with the emulator's key (for tests)."""
        return self.sender.sign(body, timestamp=timestamp)

    async def __aenter__(self) -> TelnyxEmulator:
        self.sender.start()
        await self._server.__aenter__()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for call in list(self.calls.values()):
            if call.leg is not None:
                call.leg.request_stop("emulator_shutdown")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.aclose()
        await self.sender.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- calls placed by the network -------------------------------------------------------------
    async def place_inbound_call(
        self,
        *,
        to: str,
        from_: str,
        audio: AudioSource = None,
        webhook_url: str | None = None,
        dtmf: str = "",
        swap_every: int = 0,
        media_leg_factory: MediaLegFactory | None = None,
    ) -> EmulatedCall:
        """A caller dials ``to``: sends ``call.initiated`` and returns the call.

        Args:
            audio: what the caller says (WAV path/bytes); the emulator's default when None.
            webhook_url: overrides the emulator's ``webhook_url`` for this call.
            dtmf: digits the caller presses after speaking (media ``dtmf`` + webhook).
            swap_every: deliver every Nth pair of media frames out of order.
            media_leg_factory: this call's media leg builder (overrides the emulator's).
        """
        call = EmulatedCall(
            direction="incoming",
            from_number=from_,
            to_number=to,
            connection_id=self.connection_id,
            webhook_url=webhook_url or self.webhook_url,
            audio=audio if audio is not None else self.audio,
            dtmf=dtmf,
            swap_every=swap_every,
        )
        call.started_at = asyncio.get_running_loop().time()
        self.calls[call.call_control_id] = call
        if media_leg_factory is not None:
            self._leg_factories[call.call_control_id] = media_leg_factory
        self._spawn(self._time_limit(call))
        self._webhook(call, "call.initiated", call.payload(caller_id_name=from_))
        return call

    # -- REST ------------------------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {self.api_key}"

    async def _dial(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return auth_failed()
        body = await json_object(request)
        if body is None:
            return self._reject("dial", "body is not a JSON object")
        self.commands.append(("", "dial", body))
        missing = [k for k in ("connection_id", "to", "from") if not body.get(k)]
        if missing:
            return self._reject("dial", f"missing required field(s): {', '.join(missing)}")
        amd_mode = body.get("answering_machine_detection")
        if amd_mode is not None and amd_mode not in AMD_MODES:
            return self._reject("dial", f"answering_machine_detection {amd_mode!r} is invalid")
        machine = self.answering_machine
        call = EmulatedCall(
            direction="outgoing",
            from_number=str(body["from"]),
            to_number=str(body["to"]),
            connection_id=str(body["connection_id"]),
            webhook_url=body.get("webhook_url") or self.webhook_url,
            audio=machine.wav() if machine is not None else self.audio,
            state="bridging",
            client_state=body.get("client_state"),
        )
        call.started_at = asyncio.get_running_loop().time()
        call.commands.append("dial")
        call.command_bodies.append(body)
        self.calls[call.call_control_id] = call
        self._spawn(self._time_limit(call))
        self._webhook(call, "call.initiated", call.payload())
        if self.callee_answers:
            self._spawn(self._callee_answers(call, body))
        else:  # rings until the dial's timeout_secs
            ring_s = float(body.get("timeout_secs") or 30)
            self._spawn(self._unanswered(call, ring_s))
        if amd_mode is not None:
            reports = amd_reports(str(amd_mode), machine)
            self._spawn(report_amd(call, reports, self._webhook, speed=self.speed))
        data = {
            "call_control_id": call.call_control_id,
            "call_leg_id": call.call_leg_id,
            "call_session_id": call.call_session_id,
            "is_alive": False,
            "record_type": "call",
        }
        return JSONResponse({"data": data})

    async def _get_call(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return auth_failed()
        call = self.calls.get(request.path_params["ccid"])
        if call is None:
            return not_found("Unknown call_control_id.")
        data = {
            "call_control_id": call.call_control_id,
            "is_alive": call.is_alive,
            "call_leg_id": call.call_leg_id,
            "call_session_id": call.call_session_id,
            "record_type": "call",
        }
        return JSONResponse({"data": data})

    async def _action(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return auth_failed()
        ccid, action = request.path_params["ccid"], request.path_params["action"]
        body = await json_object(request)
        if body is None:
            return self._reject(action, "body is not a JSON object")
        self.commands.append((ccid, action, body))
        call = self.calls.get(ccid)
        if call is None:
            return not_found("Unknown call_control_id.")
        call.commands.append(action)
        call.command_bodies.append(body)
        if not call.is_alive:
            return error_response(422, *CALL_ENDED)
        if body.get("client_state"):
            call.client_state = str(body["client_state"])
        match action:
            case "answer":
                return self._answer(call, body)
            case "streaming_start":
                return self._streaming_start(call, body)
            case "streaming_stop":
                if call.leg is not None:
                    call.leg.request_stop("streaming_stop")
                return ok_response()
            case "hangup":
                self._spawn(self._end_call(call, "normal_clearing", "callee", "app_hangup"))
                return ok_response()
            case "transfer":
                if not body.get("to"):
                    return self._reject(action, "transfer needs 'to'", call)
                self._spawn(self._end_call(call, "normal_clearing", "callee", "transferred"))
                return ok_response()
            case "reject":  # an incoming call not yet answered; causes as Telnyx documents
                if call.direction != "incoming" or call.state != "parked":
                    return self._reject(action, f"call is {call.direction} and {call.state}", call)
                cause = REJECT_CAUSES.get(str(body.get("cause")))
                if cause is None:
                    return self._reject(action, f"cause {body.get('cause')!r} is not one", call)
                self._spawn(self._end_call(call, cause, "callee", "rejected"))
                return ok_response()
            case "send_dtmf":
                if not body.get("digits"):
                    return self._reject(action, "send_dtmf needs 'digits'", call)
                return ok_response()
            case "playback_start" | "speak" | "bridge":
                return self._join_command(call, action, body)
            case _:
                return not_found(f"Unknown action {action!r}.")

    def heard_by(self, ccid: str) -> Heard:
        """What commands played to call ``ccid``, and whom it is bridged with."""
        return self.heard.setdefault(ccid, Heard())

    def _join_command(self, call: EmulatedCall, action: str, body: dict[str, Any]) -> JSONResponse:
        """``playback_start``, ``speak``, ``bridge`` (``bridging.py``)."""
        if call.state != "answered":
            return self._reject(action, f"call is {call.state}, not answered", call)
        heard, speed = self.heard_by(call.call_control_id), self.speed
        if action == "playback_start":
            if not body.get("audio_url"):  # media_name/playback_content are not emulated
                return self._reject(action, "playback_start needs 'audio_url' here", call)
            self._spawn(playback(call, heard, str(body["audio_url"]), self._webhook, speed=speed))
        elif action == "speak":
            if not body.get("payload") or not body.get("voice"):
                return self._reject(action, "speak needs 'payload' and 'voice'", call)
            self._spawn(speak(call, heard, str(body["payload"]), self._webhook, speed=speed))
        else:
            other = self.calls.get(str(body.get("call_control_id") or ""))
            if other is None or other is call or other.state != "answered":
                return self._reject(action, "bridge needs another live, answered call", call)
            self._spawn(
                bridge(
                    call,
                    other,
                    self.heard_by,
                    self._webhook,
                    self._end_call,
                    talk_s=self.talk_s,
                    speed=speed,
                )
            )
        return ok_response()

    async def _unanswered(self, call: EmulatedCall, ring_s: float) -> None:
        await asyncio.sleep(ring_s / self.speed)
        await self._end_call(call, "timeout", "callee", "no_answer")

    def _reject(self, action: str, why: str, call: EmulatedCall | None = None) -> JSONResponse:
        """A request the real API rejects: 422 and a recorded violation (code UNCONFIRMED)."""
        message = f"{action}: {why}"
        (call.violations if call is not None else self._rest_violations).append(message)
        return error_response(422, "10015", "Invalid parameter", why)

    # -- call flow -------------------------------------------------------------------------------
    def _answer(self, call: EmulatedCall, body: dict[str, Any]) -> JSONResponse:
        if call.direction != "incoming" or call.state != "parked":
            return self._reject("answer", f"call is {call.direction} and {call.state}", call)
        if body.get("stream_url"):
            problem = check_stream(body)
            if problem:
                return self._reject("answer", problem, call)
        call.state = "answered"
        self._webhook(call, "call.answered", call.payload())
        if body.get("stream_url"):
            self._start_leg(call, body)
        return ok_response()

    def _streaming_start(self, call: EmulatedCall, body: dict[str, Any]) -> JSONResponse:
        if call.state != "answered":
            return self._reject("streaming_start", f"call is {call.state}, not answered", call)
        problem = check_stream(body)
        if problem:
            return self._reject("streaming_start", problem, call)
        self._start_leg(call, body)
        return ok_response()

    def _start_leg(self, call: EmulatedCall, params: dict[str, Any]) -> None:
        if call.leg is not None:
            call.leg.request_stop("replaced")  # one stream per call: a new one replaces it
        codec_in = str(params.get("stream_codec") or "PCMU")
        codec_in = "PCMU" if codec_in == "default" else codec_in
        rate = int(params.get("stream_bidirectional_sampling_rate") or 16000)
        try:
            inbound = WireFormat(codec_in, 16000, self.l16_byteorder)
            outbound = None
            if params.get("stream_bidirectional_mode") == "rtp":
                codec_out = str(params.get("stream_bidirectional_codec") or "PCMU")
                outbound = WireFormat(codec_out, rate, self.l16_byteorder)
        except ValueError as exc:  # G722/OPUS/AMR-WB: valid for Telnyx, not carried here
            call.violations.append(f"emulator cannot carry this stream: {exc}")
            return
        custom = {
            str(p.get("name")): str(p.get("value"))
            for p in params.get("custom_parameters") or []
            if isinstance(p, dict)
        }
        start: dict[str, Any] = {
            "user_id": self.user_id,
            "call_control_id": call.call_control_id,
            "call_session_id": call.call_session_id,
            "from": call.from_number,
            "to": call.to_number,
            "tags": [],
            "client_state": call.client_state,
            "custom_parameters": custom,
        }
        factory = self._leg_factories.get(call.call_control_id, self.media_leg_factory)
        leg: MediaLeg
        if factory is not None:
            leg = factory(
                url=str(params["stream_url"]),
                start=start,
                inbound=inbound,
                outbound=outbound,
                call_control_id=call.call_control_id,
            )
        else:
            leg = self._caller_leg(call, params, start, inbound, outbound)
        call.leg, call.stream_url = leg, str(params["stream_url"])
        if call.first_leg_at is None:
            call.first_leg_at = asyncio.get_running_loop().time()
        self._webhook(call, "streaming.started", call.payload(stream_url=call.stream_url))
        call.leg_task = asyncio.create_task(leg.run())
        self._spawn(self._after_leg(call, leg))

    def _caller_leg(
        self,
        call: EmulatedCall,
        params: dict[str, Any],
        start: dict[str, Any],
        inbound: WireFormat,
        outbound: WireFormat | None,
    ) -> CallerMediaLeg:
        """The default caller: plays the call's audio (WAV) and records what it hears; a later
        leg (after a lost stream) goes on where the caller is by now."""
        audio = load_pcm16(call.audio, inbound.sample_rate)
        if call.first_leg_at is not None:
            elapsed = (asyncio.get_running_loop().time() - call.first_leg_at) * self.speed
            audio = audio[int(elapsed * inbound.sample_rate) * 2 :]
        return CallerMediaLeg(
            url=str(params["stream_url"]),
            start=start,
            inbound=inbound,
            outbound=outbound,
            audio=audio,
            speed=self.speed,
            tail_ms=self.tail_ms,
            min_tail_s=self.min_tail_s,
            max_ms=self.max_call_ms,
            dtmf=call.dtmf,
            swap_every=call.swap_every,
            on_dtmf=lambda digit: self._webhook(
                call, "call.dtmf.received", call.payload(digit=digit)
            ),
            violations=call.violations,
        )

    async def _after_leg(self, call: EmulatedCall, leg: MediaLeg) -> None:
        assert call.leg_task is not None
        result = await call.leg_task
        call.legs.append(result)
        if result.connect_error:
            call.leg = None  # never streamed: no streaming.stopped
            self._webhook(
                call,
                "streaming.failed",
                call.payload(
                    failure_reason="connection_failed",
                    stream_id=result.stream_id,
                    stream_params={"stream_url": leg.url, "track": "inbound_track"},
                    stream_type="websocket",
                ),
            )
        elif result.ended_by in ("streaming_stop", "replaced"):
            self._webhook(call, "streaming.stopped", call.payload(stream_url=leg.url))
            return
        elif result.ended_by == "app_closed_socket" and call.is_alive and call.leg is leg:
            # the socket died under the call (not streaming_stop): Telnyx keeps the call up
            call.leg = None
            self._webhook(call, "streaming.stopped", call.payload(stream_url=leg.url))
            self._spawn(self._await_new_stream(call))
            return
        if call.is_alive:
            cause = "time_limit" if result.ended_by == "max_duration" else "normal_clearing"
            await self._end_call(call, cause, "caller", result.ended_by)

    async def _await_new_stream(self, call: EmulatedCall) -> None:
        """The caller left without a stream hangs up after ``stream_loss_patience_ms``."""
        await asyncio.sleep(self.stream_loss_patience_ms / 1000 / self.speed)
        if call.is_alive and call.leg is None:
            await self._end_call(call, "normal_clearing", "caller", "stream_lost")

    async def _time_limit(self, call: EmulatedCall) -> None:
        """End any call at ``max_call_ms`` (unanswered, or answered with no stream running)."""
        await asyncio.sleep(self.max_call_ms / 1000 / self.speed)
        await self._end_call(call, "time_limit", "unknown", "max_duration")

    async def _callee_answers(self, call: EmulatedCall, dial: dict[str, Any]) -> None:
        await asyncio.sleep(self.answer_delay_ms / 1000 / self.speed)
        if not call.is_alive:
            return
        call.state = "answered"
        self._webhook(call, "call.answered", call.payload())
        if dial.get("stream_url"):
            problem = check_stream(dial)
            if problem:
                call.violations.append(f"dial: {problem}")
            else:
                self._start_leg(call, dial)

    async def _end_call(self, call: EmulatedCall, cause: str, source: str, why: str) -> None:
        if not call.is_alive:
            return
        call.state = "hangup"
        call.ended_by = why
        call.hangup_cause, call.hangup_source = cause, source
        had_stream = call.leg is not None
        if call.leg is not None and call.leg_task is not None and not call.leg_task.done():
            call.leg.request_stop(why)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(call.leg_task)
            await asyncio.sleep(0)  # let _after_leg record the leg
        call.ended_at = asyncio.get_running_loop().time()
        if had_stream:
            self._webhook(call, "streaming.stopped", call.payload(stream_url=call.stream_url))
        await self._webhook(call, "call.hangup", call.hangup_payload())
        await asyncio.sleep(0)  # let the delivery callbacks record their statuses
        if call.leg_task is not None and call.leg_task.done():
            result = call.leg_task.result()
            if not any(leg is result for leg in call.legs):
                call.legs.append(result)
        call.report = call.build_report(self.speed)
        call.done.set()
        logger.info("telnyx emulator: call %s ended (%s)", call.call_control_id, why)

    def _webhook(
        self, call: EmulatedCall, event_type: str, payload: dict[str, Any]
    ) -> asyncio.Future[int]:
        done = self.sender.send(call.webhook_url, event_type, payload)
        done.add_done_callback(lambda f: call.webhooks.append((event_type, f.result())))
        return done
