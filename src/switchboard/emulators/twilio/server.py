"""A fake Twilio REST API (Calls create/update/fetch); simulated callers answer its calls.

``TwilioEmulator.base_url`` works as ``TWILIO_BASE_URL``. Resources and errors follow
twilio.com/docs/voice/api/call-resource (API 2010-04-01, form-encoded in, JSON out):

* HTTP Basic ``AccountSid:AuthToken`` checked → 401 / 20003 otherwise;
* create: ``To``/``From`` must be E.164 (or ``client:``/``sip:``) → 400 / 21211 (To), 21212 (From);
  exactly one of ``Url``/``Twiml``/``ApplicationSid`` → 400 / 21205;
* update/fetch of an unknown CallSid → 404 / 20404; redirecting a call that is not in progress →
  400 / 21220; ``Status=completed`` on an ended call returns it unchanged.

Created calls (and :meth:`TwilioEmulator.dial_in` inbound calls) are answered by a
:class:`~.caller.TwilioCaller` that follows the ``Url``/``Twiml`` like Twilio would; REST updates
reach the live caller (hang up, redirect to new TwiML such as ``<Dial>``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from switchboard.emulators.answering_machine import AnsweringMachine
from switchboard.emulators.loopback import LoopbackServer
from switchboard.emulators.twilio.amd import MODES, detection, report_async_amd
from switchboard.emulators.twilio.caller import TwilioCaller, load_ulaw, new_sid
from switchboard.emulators.twilio.conference import Callee
from switchboard.emulators.twilio.conference_api import ConferenceRoutes
from switchboard.emulators.twilio.state import TwilioCallReport

__all__ = ["RecordedRequest", "TwilioEmulator", "run"]

logger = logging.getLogger(__name__)
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_ENDED = {"completed", "busy", "failed", "no-answer", "canceled"}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One REST request the emulator received (form parameters in order; no credentials)."""

    method: str
    path: str
    form: tuple[tuple[str, str], ...]
    status: int

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)


@dataclass
class _Call:
    resource: dict[str, Any]
    caller: TwilioCaller | None = None
    task: asyncio.Task[TwilioCallReport] | None = None
    updates: list[dict[str, str]] = field(default_factory=list)
    side_tasks: list[asyncio.Task[None]] = field(default_factory=list)  # AMD callbacks


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status)


def _valid_party(number: str) -> bool:
    return bool(_E164.match(number)) or number.startswith(("client:", "sip:"))


class TwilioEmulator:
    """Fake ``api.twilio.com`` on ``host:port``, plus simulated callers for its calls.

    Args:
        account_sid: the account accepted in Basic auth and paths.
        auth_token: its token (also the key callers sign webhooks with).
        audio: what answering callers say (WAV path, μ-law bytes via :func:`load_ulaw`, or None
            for one second of silence).
        speed: clock factor for the callers (1.0 real time).
        answering_machine: the callee of outbound calls is this machine (greeting, beep,
            silence), and machine detection reports it (``emulators/twilio/amd.py``).
        callee: who conference participant creates reach (a person by default; a machine,
            or nobody: ``emulators/twilio/conference.py``).
        caller_options: further :class:`TwilioCaller` keyword arguments (``linger_s``...).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_sid: str = "AC" + "1" * 32,
        auth_token: str = "emulator-auth-token",  # noqa: S107  # a fake account's token
        audio: Path | str | bytes | None = None,
        speed: float = 1.0,
        answering_machine: AnsweringMachine | None = None,
        callee: Callee | None = None,
        **caller_options: Any,
    ) -> None:
        self.account_sid = account_sid
        #: who answers outbound calls: this machine, or (None) a person saying ``audio``
        self.answering_machine = answering_machine
        self.auth_token = auth_token
        self.audio = audio if isinstance(audio, bytes) else load_ulaw(audio)
        self.speed = speed
        self.caller_options = caller_options
        self.calls: dict[str, _Call] = {}
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        #: Conferences and Participants (``conference_api.py``); who participant creates reach
        self.rooms = ConferenceRoutes(self, callee or Callee())
        self._server = LoopbackServer(self.app(), host=host, port=port, lifespan="off")

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def port(self) -> int:
        return self._server.port

    def app(self) -> Starlette:
        base = "/2010-04-01/Accounts/{account}"
        return Starlette(
            routes=[
                Route(f"{base}/Calls.json", self._create, methods=["POST"]),
                Route(f"{base}/Calls/{{sid}}.json", self._update, methods=["POST"]),
                Route(f"{base}/Calls/{{sid}}.json", self._fetch, methods=["GET"]),
                *self.rooms.routes(base),
            ]
        )

    async def __aenter__(self) -> TwilioEmulator:
        await self._server.__aenter__()
        logger.info("Twilio emulator on %s", self.base_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):  # hang up and shut down even when cancelled
            live = [c for c in self.calls.values() if c.task is not None and not c.task.done()]
            for call in live:
                if call.caller is not None:
                    call.caller.hang_up()
            await self.wait_calls(timeout_s=5.0)
            for call in live:
                if call.task is not None and not call.task.done():
                    call.task.cancel()
            for call in self.calls.values():
                for task in call.side_tasks:
                    task.cancel()
            await self._server.aclose()

    async def wait_calls(self, *, timeout_s: float = 30.0) -> list[TwilioCallReport]:
        """Wait for every simulated call to finish; returns their reports."""
        tasks = [c.task for c in self.calls.values() if c.task is not None]
        if not tasks:
            return []
        done, _ = await asyncio.wait(tasks, timeout=timeout_s)
        return [t.result() for t in tasks if t in done and not t.cancelled()]

    # -- inbound calls -----------------------------------------------------------------------------
    def dial_in(self, webhook_url: str, **options: Any) -> TwilioCaller:
        """Start an inbound call to an app's voice webhook (the REST API knows its CallSid)."""
        opts = {**self.caller_options, **options}
        caller = TwilioCaller(
            webhook_url=webhook_url,
            auth_token=self.auth_token,
            audio=opts.pop("audio", self.audio),
            account_sid=self.account_sid,
            speed=opts.pop("speed", self.speed),
            **opts,
        )
        resource = self._resource(caller.report.call_sid, caller.to, caller.from_, "inbound")
        self._start(resource, caller)
        return caller

    def new_call(self, resource: dict[str, Any]) -> _Call:
        """A Call resource with no simulated caller (a conference participant's leg)."""
        call = self.calls[resource["sid"]] = _Call(resource=resource)
        return call

    def spawn(self, sid: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` for call ``sid`` (cancelled when the emulator stops)."""
        self.calls[sid].side_tasks.append(asyncio.get_running_loop().create_task(coro))

    error = staticmethod(_error)
    valid_party = staticmethod(_valid_party)

    def _start(self, resource: dict[str, Any], caller: TwilioCaller) -> None:
        call = _Call(resource=resource, caller=caller)
        caller.conference_hook = self.rooms.join_conference
        self.calls[resource["sid"]] = call
        resource["status"] = "in-progress"
        resource["start_time"] = formatdate(usegmt=True)

        async def run() -> TwilioCallReport:
            report = await caller.run()
            resource.update(
                status="completed",
                end_time=formatdate(usegmt=True),
                duration=str(round(report.call_ms / 1000)),
                date_updated=formatdate(usegmt=True),
            )
            return report

        call.task = asyncio.get_running_loop().create_task(run())

    # -- REST --------------------------------------------------------------------------------------
    def _resource(self, sid: str, to: str, from_: str, direction: str) -> dict[str, Any]:
        now = formatdate(usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json"
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "parent_call_sid": None,
            "to": to,
            "to_formatted": to,
            "from": from_,
            "from_formatted": from_,
            "phone_number_sid": None,
            "status": "queued",
            "start_time": None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "direction": direction,
            "answered_by": None,
            "api_version": "2010-04-01",
            "forwarded_from": None,
            "caller_name": None,
            "date_created": now,
            "date_updated": now,
            "uri": uri,
            "subresource_uris": {
                "streams": uri.replace(".json", "/Streams.json"),
                "notifications": uri.replace(".json", "/Notifications.json"),
            },
        }

    def _authorized(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        ok_user = secrets.compare_digest(user, self.account_sid)
        ok_pass = secrets.compare_digest(password, self.auth_token)
        return ok_user and ok_pass and request.path_params["account"] == self.account_sid

    async def _guard(self, request: Request) -> tuple[list[tuple[str, str]], JSONResponse | None]:
        form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
        if not self._authorized(request):
            return form, _error(401, 20003, "Authenticate")
        return form, None

    def _record(self, request: Request, form: list[tuple[str, str]], resp: Response) -> None:
        self.requests.append(
            RecordedRequest(request.method, request.url.path, tuple(form), resp.status_code)
        )

    async def _create(self, request: Request) -> JSONResponse:
        form, resp = await self._guard(request)
        if resp is None:
            resp = self._create_call(dict(form), form)
        self._record(request, form, resp)
        return resp

    def _create_call(self, params: dict[str, str], form: list[tuple[str, str]]) -> JSONResponse:
        to, from_ = params.get("To", ""), params.get("From", "")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not _valid_party(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not _valid_party(from_):
            return _error(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        sources = [k for k in ("Url", "Twiml", "ApplicationSid") if params.get(k)]
        if len(sources) != 1:
            return _error(400, 21205, "Exactly one of Url, Twiml or ApplicationSid is required")
        amd_mode = params.get("MachineDetection")
        if amd_mode is not None and amd_mode not in MODES:
            self.violations.append(f"MachineDetection {amd_mode!r} is not Enable/DetectMessageEnd")
            # The error code Twilio gives an invalid enum value is UNCONFIRMED here.
            return _error(400, 21205, f"Invalid MachineDetection {amd_mode!r}")
        resource = self._resource(new_sid("CA"), to, from_, "outbound-api")
        events = [v for k, v in form if k == "StatusCallbackEvent"] or ["completed"]
        opts = {**self.caller_options}
        machine = self.answering_machine
        if machine is not None:
            opts["audio"] = load_ulaw(machine.pcm())
        caller = TwilioCaller(
            webhook_url=params.get("Url"),
            twiml=params.get("Twiml"),
            auth_token=self.auth_token,
            audio=opts.pop("audio", self.audio),
            account_sid=self.account_sid,
            from_=from_,  # webhooks of outbound-api calls carry From/To as created
            to=to,
            direction="outbound-api",
            status_url=params.get("StatusCallback"),
            status_events=[e.replace("answered", "in-progress") for e in events],
            speed=opts.pop("speed", self.speed),
            call_sid=resource["sid"],
            **opts,
        )
        self._start(resource, caller)
        if amd_mode is not None:
            answered_by, after_ms = detection(amd_mode, machine)
            amd_url = params.get("AsyncAmdStatusCallback")
            if params.get("AsyncAmd", "false").lower() == "true" and amd_url:
                call = self.calls[resource["sid"]]
                call.side_tasks.append(
                    asyncio.get_running_loop().create_task(
                        report_async_amd(
                            caller,
                            amd_url,
                            answered_by,
                            after_ms,
                            resource=resource,
                            speed=self.speed,
                        )
                    )
                )
            else:  # synchronous AMD: the voice webhook says who answered
                caller.answered_by = resource["answered_by"] = answered_by
        body = dict(resource)
        body["status"] = "queued"
        return JSONResponse(body, status_code=201)

    async def _update(self, request: Request) -> JSONResponse:
        form, resp = await self._guard(request)
        if resp is None:
            resp = self._update_call(request.path_params["sid"], dict(form))
        self._record(request, form, resp)
        return resp

    def _update_call(self, sid: str, params: dict[str, str]) -> JSONResponse:
        call = self.calls.get(sid)
        if call is None:
            return _error(404, 20404, f"The requested resource {sid} was not found")
        call.updates.append(params)
        res = call.resource
        status = params.get("Status")
        if status in ("completed", "canceled"):
            if res["status"] not in _ENDED and call.caller is not None:
                call.caller.hang_up()
            elif res["status"] not in _ENDED:  # a participant's leg: rings no more, or leaves
                res.update(status=status, end_time=formatdate(usegmt=True))
                if (leg := self.rooms.legs.get(sid)) is not None:
                    leg.conference.leave(sid)
            return JSONResponse(res)
        if status is not None:
            return _error(400, 21218, f"Invalid Status {status!r}")
        twiml, url = params.get("Twiml"), params.get("Url")
        if twiml is None and url is None:
            return JSONResponse(res)
        if res["status"] in _ENDED or call.caller is None:
            return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        call.caller.redirect(twiml=twiml, url=url)
        return JSONResponse(res)

    async def _fetch(self, request: Request) -> JSONResponse:
        form, resp = await self._guard(request)
        if resp is None:
            call = self.calls.get(request.path_params["sid"])
            resp = (
                JSONResponse(call.resource)
                if call is not None
                else _error(404, 20404, "The requested resource was not found")
            )
        self._record(request, form, resp)
        return resp


async def run(*, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
    """Serve the Twilio emulator until cancelled; prints its URL once."""
    async with TwilioEmulator(host=host, port=port, **options) as emu:
        print(f"Twilio emulator listening on {emu.base_url}", flush=True)
        await asyncio.Event().wait()
