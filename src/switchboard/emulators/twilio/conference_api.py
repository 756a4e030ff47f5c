"""The Twilio emulator's Conferences and Participants REST resources (API 2010-04-01).

Mixed into :class:`~switchboard.emulators.twilio.server.TwilioEmulator`; the rooms and
their rules are ``conference.py``. Resources and errors from
twilio.com/docs/voice/api/conference-resource and .../conference-participant-resource:

* ``POST Conferences/{sid or friendly name}/Participants.json``: ``From``/``To`` required and
  valid (400 / 21201, 21211, 21212), ``Timeout`` 5–600 s, ``MachineDetection`` ``Enable`` or
  ``DetectMessageEnd``; 201 with the participant (``status`` ``queued``);
* ``GET .../Participants.json`` lists connected participants (``{"participants": [...]}``);
* ``GET``/``POST``/``DELETE .../Participants/{CallSid}.json``: fetch, update (``AnnounceUrl``,
  ``Hold``, ``Muted``), kick (204); unknown → 404 / 20404;
* ``GET Conferences.json`` (``FriendlyName``, ``Status`` filters) and ``Conferences/{sid}.json``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from switchboard.emulators.twilio.amd import MODES
from switchboard.emulators.twilio.caller import TwilioCaller, new_sid
from switchboard.emulators.twilio.conference import (
    Callee,
    Conference,
    Participant,
    announce,
    ring,
)
from switchboard.emulators.twilio.twiml import Verb

__all__ = ["ConferenceRoutes"]


class TwilioEmulator(Protocol):
    """What the resources need of the emulator (``server.py``'s ``TwilioEmulator``)."""

    account_sid: str
    auth_token: str
    speed: float
    violations: list[str]
    calls: dict[str, Any]

    async def _guard(
        self, request: Request
    ) -> tuple[list[tuple[str, str]], JSONResponse | None]: ...

    def _record(self, request: Request, form: list[tuple[str, str]], resp: Response) -> None: ...

    def _resource(self, sid: str, to: str, from_: str, direction: str) -> dict[str, Any]: ...

    def new_call(self, resource: dict[str, Any]) -> Any: ...

    def spawn(self, sid: str, coro: Coroutine[Any, Any, None]) -> None: ...

    def error(self, status: int, code: int, message: str) -> JSONResponse: ...

    def valid_party(self, number: str) -> bool: ...


#: ``ConferenceStatusCallbackEvent`` values (participant create)
_CONFERENCE_EVENTS = frozenset(
    {"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"}
)


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.lower() == "true"


class ConferenceRoutes:
    """Conference state and routes of ``emu`` (see the module docstring); ``callee`` is who
    answers participant creates."""

    def __init__(self, emu: TwilioEmulator, callee: Callee) -> None:
        self.emu = emu
        self.callee = callee
        self.conferences: dict[str, Conference] = {}
        #: participant calls by CallSid
        self.legs: dict[str, Participant] = {}

    def routes(self, base: str) -> list[Route]:
        c = f"{base}/Conferences"
        p = f"{c}/{{conference}}/Participants"
        return [
            Route(f"{c}.json", self._list_conferences, methods=["GET"]),
            Route(f"{c}/{{conference}}.json", self._fetch_conference, methods=["GET"]),
            Route(f"{p}.json", self._create_participant, methods=["POST"]),
            Route(f"{p}.json", self._list_participants, methods=["GET"]),
            Route(f"{p}/{{call}}.json", self._participant, methods=["GET", "POST", "DELETE"]),
        ]

    def conference(self, key: str) -> Conference | None:
        """A conference by SID or friendly name (the newest one not completed)."""
        if key in self.conferences:
            return self.conferences[key]
        named = [c for c in self.conferences.values() if c.friendly_name == key]
        live = [c for c in named if c.status != "completed"]
        found = live or named
        return found[-1] if found else None

    def room(self, name: str) -> Conference:
        """The live conference called ``name``, created if there is none."""
        conf = self.conference(name)
        if conf is None or conf.status == "completed":
            conf = Conference(name, hang_up=self._end_leg)
            self.conferences[conf.sid] = conf
        return conf

    def _end_leg(self, sid: str) -> None:
        call = self.emu.calls.get(sid)
        if call is None:
            return
        if call.caller is not None:
            call.caller.hang_up()
        elif call.resource["status"] not in ("completed", "canceled", "no-answer"):
            call.resource["status"] = "completed"

    async def join_conference(self, caller: TwilioCaller, noun: Verb) -> None:
        """A caller ran ``<Dial><Conference>``: it is in the room until it is hung up or the
        conference ends (at most ``linger_s`` of the caller's clock, then it hangs up)."""
        conf = self.room(noun.text)
        sid = caller.report.call_sid
        p = Participant(
            sid,
            conf,
            start_conference_on_enter=_flag(noun.attrs.get("startConferenceOnEnter"), True),
            end_conference_on_exit=_flag(noun.attrs.get("endConferenceOnExit"), False),
        )
        conf.enter(p)
        caller.report.dialed.append(f"conference:{conf.friendly_name}")
        waits = [asyncio.ensure_future(e.wait()) for e in (caller.control.event, conf.ended)]
        try:
            await asyncio.wait(
                waits, timeout=caller.linger_s / self.emu.speed, return_when="FIRST_COMPLETED"
            )
        finally:
            for w in waits:
                w.cancel()
            conf.leave(sid)

    # -- routes ------------------------------------------------------------------------------------
    async def _handle(
        self, request: Request, act: Callable[[dict[str, str]], Response]
    ) -> Response:
        form, denied = await self.emu._guard(request)
        resp = denied if denied is not None else act(dict(form))
        self.emu._record(request, form, resp)
        return resp

    async def _list_conferences(self, request: Request) -> Response:
        def act(_params: dict[str, str]) -> Response:
            q = request.query_params
            items = [
                c.resource(self.emu.account_sid)
                for c in self.conferences.values()
                if q.get("FriendlyName") in (None, c.friendly_name)
                and q.get("Status") in (None, c.status)
            ]
            return JSONResponse({"conferences": items, "page": 0, "page_size": 50})

        return await self._handle(request, act)

    async def _fetch_conference(self, request: Request) -> Response:
        def act(_params: dict[str, str]) -> Response:
            conf = self.conferences.get(request.path_params["conference"])
            if conf is None:
                return self.not_found("conference")
            return JSONResponse(conf.resource(self.emu.account_sid))

        return await self._handle(request, act)

    async def _create_participant(self, request: Request) -> Response:
        key = request.path_params["conference"]
        return await self._handle(request, lambda params: self._add_participant(key, params))

    def _add_participant(self, key: str, params: dict[str, str]) -> Response:
        to, from_ = params.get("To", ""), params.get("From", "")
        if not to:
            return self.emu.error(400, 21201, "No 'To' number is specified")
        if not self.emu.valid_party(to):
            return self.emu.error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not self.emu.valid_party(from_):
            return self.emu.error(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        amd = params.get("MachineDetection")
        if amd is not None and amd not in MODES:
            self.emu.violations.append(f"participant MachineDetection {amd!r}")
            return self.emu.error(400, 21205, f"Invalid MachineDetection {amd!r}")
        try:
            timeout_s = float(params.get("Timeout", "30"))
        except ValueError:
            timeout_s = -1.0
        if not 5 <= timeout_s <= 600:
            self.emu.violations.append(f"participant Timeout {params.get('Timeout')!r}")
            return self.emu.error(400, 21205, "Timeout must be between 5 and 600")
        conf = self.room(key) if not key.startswith("CF") else self.conference(key)
        if conf is None:
            return self.not_found("conference")
        if (callback := params.get("ConferenceStatusCallback")) and conf.status_callback is None:
            conf.status_callback = callback
            events = params.get("ConferenceStatusCallbackEvent", "")
            conf.status_events = frozenset(events.replace(",", " ").split())
            if unknown := conf.status_events - _CONFERENCE_EVENTS:
                self.emu.violations.append(f"ConferenceStatusCallbackEvent {sorted(unknown)}")
        sid = new_sid("CA")
        resource = self.emu._resource(sid, to, from_, "outbound-api")
        call = self.emu.new_call(resource)
        p = Participant(
            sid,
            conf,
            label=params.get("Label"),
            start_conference_on_enter=_flag(params.get("StartConferenceOnEnter"), True),
            end_conference_on_exit=_flag(params.get("EndConferenceOnExit"), False),
            muted=_flag(params.get("Muted"), False),
        )
        self.legs[sid] = p
        ringing = ring(
            p, resource, self.callee, timeout_s=timeout_s, amd=amd is not None, speed=self.emu.speed
        )
        call.side_tasks.append(asyncio.get_running_loop().create_task(ringing))
        return JSONResponse(p.resource(self.emu.account_sid), status_code=201)

    async def _list_participants(self, request: Request) -> Response:
        def act(_params: dict[str, str]) -> Response:
            conf = self.conference(request.path_params["conference"])
            items = [] if conf is None else list(conf.participants.values())
            body = [p.resource(self.emu.account_sid) for p in items]
            return JSONResponse({"participants": body, "page": 0, "page_size": 50})

        return await self._handle(request, act)

    async def _participant(self, request: Request) -> Response:
        return await self._handle(request, lambda params: self._act_on_participant(request, params))

    def _act_on_participant(self, request: Request, params: dict[str, str]) -> Response:
        conf = self.conference(request.path_params["conference"])
        key = request.path_params["call"]
        p = None
        if conf is not None:
            p = conf.participants.get(key) or next(
                (x for x in conf.participants.values() if x.label == key), None
            )
        if conf is None or p is None:
            return self.not_found("participant")
        if request.method == "DELETE":
            conf.leave(p.call_sid)
            self._end_leg(p.call_sid)
            return Response(status_code=204)
        if request.method == "POST":
            if "Hold" in params:
                p.hold = _flag(params["Hold"], p.hold)
            if "Muted" in params:
                p.muted = _flag(params["Muted"], p.muted)
            if url := params.get("AnnounceUrl"):
                if params.get("AnnounceMethod", "POST").upper() != "POST":
                    self.emu.violations.append("AnnounceMethod GET is not emulated")
                self.emu.spawn(p.call_sid, self._announce(p, url))
        return JSONResponse(p.resource(self.emu.account_sid))

    async def _announce(self, p: Participant, url: str) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            await announce(
                p,
                url,
                auth_token=self.emu.auth_token,
                account_sid=self.emu.account_sid,
                client=client,
                violations=self.emu.violations,
                speed=self.emu.speed,
            )

    def not_found(self, what: str) -> JSONResponse:
        return self.emu.error(404, 20404, f"The requested {what} was not found")
