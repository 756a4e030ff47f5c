"""The Twilio emulator's Conferences and Participants on their own: raw HTTP in, resources
checked against the ``twilio`` SDK's instance types (every field the SDK reads is there)."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.conftest import UNIT
from tests.waiting import eventually_async
from twilio.rest.api.v2010.account.conference import ConferenceInstance
from twilio.rest.api.v2010.account.conference.participant import ParticipantInstance

from switchboard.emulators.loopback import LoopbackServer
from switchboard.emulators.twilio import Callee, TwilioEmulator
from switchboard.emulators.twilio.signing import twilio_signature

pytestmark = pytest.mark.anyio


def sdk_fields(init: Callable[..., None]) -> set[str]:
    """The payload keys an SDK instance type reads (``payload.get("…")`` in its ``init``)."""
    return set(re.findall(r'payload\.get\(\s*"([a-z_]+)"', inspect.getsource(init)))


async def rest(
    emu: TwilioEmulator, method: str, path: str, data: list[tuple[str, str]] | None = None
) -> httpx.Response:
    url = f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}{path}"
    async with httpx.AsyncClient(auth=(emu.account_sid, emu.auth_token)) as client:
        return await client.request(method, url, data=dict(data) if data else None)


PERSON = [("From", "+15550100000"), ("To", "+15550100200"), ("MachineDetection", "Enable")]


async def test_a_participant_rings_answers_and_joins_with_sdk_shaped_resources() -> None:
    async with TwilioEmulator(callee=Callee("person", 0.2)) as emu:
        created = await rest(emu, "POST", "/Conferences/room-1/Participants.json", PERSON)
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        expected = sdk_fields(ParticipantInstance.__init__)
        assert len(expected) >= 15 and expected <= set(body)
        assert body["status"] == "queued" and body["conference_sid"].startswith("CF")
        sid, conf = body["call_sid"], body["conference_sid"]

        async def joined() -> dict[str, Any] | None:
            listed = (await rest(emu, "GET", f"/Conferences/{conf}/Participants.json")).json()
            return listed if listed["participants"] else None

        listed = await eventually_async(joined, limit_s=5 * UNIT)
        assert [p["call_sid"] for p in listed["participants"]] == [sid]
        assert listed["participants"][0]["status"] == "connected"
        call = (await rest(emu, "GET", f"/Calls/{sid}.json")).json()
        assert (call["status"], call["answered_by"]) == ("in-progress", "human")
        room = (await rest(emu, "GET", f"/Conferences/{conf}.json")).json()
        assert sdk_fields(ConferenceInstance.__init__) <= set(room)
        assert (room["friendly_name"], room["status"]) == ("room-1", "in-progress")
        found = (await rest(emu, "GET", "/Conferences.json?FriendlyName=room-1")).json()
        assert [c["sid"] for c in found["conferences"]] == [conf]
        kicked = await rest(emu, "DELETE", f"/Conferences/{conf}/Participants/{sid}.json")
        assert kicked.status_code == 204
        room = (await rest(emu, "GET", f"/Conferences/{conf}.json")).json()
        assert room["status"] == "completed"  # its last participant left
        assert emu.violations == []


async def test_nobody_answers_within_timeout_and_a_machine_is_detected() -> None:
    async with TwilioEmulator(callee=Callee("no_answer"), speed=10.0) as emu:
        params = [*PERSON, ("Timeout", "5")]
        body = (await rest(emu, "POST", "/Conferences/r/Participants.json", params)).json()
        await asyncio.sleep(0.7)  # 5 s at 10x
        call = (await rest(emu, "GET", f"/Calls/{body['call_sid']}.json")).json()
        assert call["status"] == "no-answer"
        listed = await rest(emu, "GET", f"/Conferences/{body['conference_sid']}/Participants.json")
        assert listed.json()["participants"] == []
    async with TwilioEmulator(callee=Callee("machine", 0.1)) as emu:
        body = (await rest(emu, "POST", "/Conferences/r/Participants.json", PERSON)).json()

        async def answered() -> str | None:
            call = (await rest(emu, "GET", f"/Calls/{body['call_sid']}.json")).json()
            return call["answered_by"]  # type: ignore[no-any-return]

        assert await eventually_async(answered, limit_s=5 * UNIT) == "machine_start"


async def test_participant_errors() -> None:
    async with TwilioEmulator() as emu:
        path = "/Conferences/r/Participants.json"
        no_to = await rest(emu, "POST", path, [("From", "+15550100000")])
        bad_from = await rest(emu, "POST", path, [("From", "x"), ("To", "+15550100200")])
        short = await rest(emu, "POST", path, [*PERSON, ("Timeout", "2")])
        amd = await rest(
            emu,
            "POST",
            path,
            [("From", "+1555"), ("To", "+15550100200"), ("MachineDetection", "Yes")],
        )
        unknown = await rest(emu, "GET", "/Conferences/CFnope/Participants/CAnope.json")
        async with httpx.AsyncClient() as anonymous:
            unauth = await anonymous.get(
                f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Conferences.json"
            )
    assert (no_to.status_code, no_to.json()["code"]) == (400, 21201)
    assert (bad_from.status_code, bad_from.json()["code"]) == (400, 21212)
    assert short.status_code == 400 and amd.status_code == 400
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20404)
    assert unauth.status_code == 401


async def test_an_announcement_takes_its_time_then_the_status_callback_says_it_ended() -> None:
    """``<Say>`` to one participant plays ~65 ms a character; then the conference's
    ``ConferenceStatusCallback`` gets a signed ``announcement-end`` with its ``CallSid``."""
    text = "A caller wants the desk."  # 24 characters: ~1.56 s
    got: list[tuple[float, dict[str, str], bool]] = []
    base = ""

    async def announce(_request: Request) -> Response:
        twiml = f"<Response><Say>{text}</Say></Response>"
        return Response(twiml, media_type="application/xml")

    async def status(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        signed = twilio_signature(emu.auth_token, f"{base}/status", sorted(form.items()))
        got.append((time.monotonic(), form, request.headers["x-twilio-signature"] == signed))
        return Response(status_code=204)

    app = Starlette(
        routes=[
            Route("/announce", announce, methods=["POST"]),
            Route("/status", status, methods=["POST"]),
        ]
    )
    async with (
        TwilioEmulator(callee=Callee("person", 0.1)) as emu,
        LoopbackServer(app, lifespan="off") as server,
    ):
        base = server.base_url
        params = [
            *PERSON,
            ("ConferenceStatusCallback", f"{base}/status"),
            ("ConferenceStatusCallbackEvent", "announcement"),
        ]
        created = (await rest(emu, "POST", "/Conferences/room-2/Participants.json", params)).json()
        sid, conf = created["call_sid"], created["conference_sid"]

        async def answered() -> bool:
            call: dict[str, Any] = (await rest(emu, "GET", f"/Calls/{sid}.json")).json()
            return bool(call["status"] == "in-progress")

        await eventually_async(answered, limit_s=5 * UNIT)
        asked = time.monotonic()
        update = [("AnnounceUrl", f"{base}/announce"), ("AnnounceMethod", "POST")]
        assert (
            await rest(emu, "POST", f"/Conferences/{conf}/Participants/{sid}.json", update)
        ).status_code == 200

        async def called() -> bool:
            return bool(got)

        await eventually_async(called, limit_s=5 * UNIT)
        assert emu.violations == []
    ((at, form, signed),) = got
    assert signed
    assert (form["StatusCallbackEvent"], form["CallSid"], form["ConferenceSid"]) == (
        "announcement-end",
        sid,
        conf,
    )
    assert at - asked >= len(text) * 0.065  # not before the words were said
