"""Twilio emulator pieces: playout clock, signing (vs the SDK), TwiML reader, REST errors."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import UNIT
from tests.waiting import printed
from twilio.request_validator import RequestValidator

from switchboard.emulators.twilio import Playout, TwilioEmulator, twilio_signature
from switchboard.emulators.twilio.signing import http_form_of
from switchboard.emulators.twilio.twiml import TwimlError, parse_twiml

F = 160


def test_playout_marks_acked_when_audio_played() -> None:
    p = Playout()
    assert p.add_mark("early") == ["early"]  # nothing queued: acked at once
    p.add_audio(b"\x00" * (2 * F + 10))
    assert p.add_mark("m1") == []
    assert p.tick() == []
    assert p.tick() == []
    assert p.tick() == ["m1"]  # third frame holds the last 10 bytes
    assert p.heard_bytes == 2 * F + 10
    assert p.tick() == []
    assert len(p.timeline) == 4 * F
    assert p.timeline[-F:] == b"\xff" * F  # silence where nothing played
    assert p.timeline[2 * F + 10 : 3 * F] == b"\xff" * (F - 10)


def test_playout_clear_drops_audio_and_acks_pending_marks() -> None:
    p = Playout()
    p.add_audio(b"\x00" * 10 * F)
    p.add_mark("a")
    p.add_audio(b"\x00" * 10 * F)
    p.add_mark("b")
    p.tick()
    assert p.clear() == ["a", "b"]
    assert p.dropped_bytes == 19 * F
    assert p.queued == 0
    assert p.tick() == []
    assert p.heard_bytes == F
    assert p.add_mark("c") == ["c"]


@pytest.mark.parametrize("algorithm", ["HMAC_SHA1", "HMAC_SHA256"])
def test_signing_matches_sdk(algorithm: str) -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [("CallSid", "CA1"), ("Digits", "5678"), ("Digits", "1234"), ("From", "+1")]
    sig = twilio_signature("12345", url, params, algorithm=algorithm)
    multi = {"CallSid": ["CA1"], "Digits": ["5678", "1234"], "From": ["+1"]}

    class Multi(dict[str, list[str]]):
        def getall(self, name: str) -> list[str]:
            return self[name]

    assert sig == RequestValidator("12345").compute_signature(url, Multi(multi), algorithm)
    assert http_form_of("wss://h.example/twilio/media") == "https://h.example/twilio/media"
    assert http_form_of("ws://h:1/m") == "http://h:1/m"


def test_twiml_reader() -> None:
    verbs = parse_twiml(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>hi</Say>'
        '<Connect><Stream url="wss://x/m"><Parameter name="a" value="1" /></Stream></Connect>'
        "<Hangup /></Response>"
    )
    assert [v.name for v in verbs] == ["Say", "Connect", "Hangup"]
    assert verbs[0].text == "hi"
    assert verbs[1].children[0].attrs["url"] == "wss://x/m"
    assert verbs[1].children[0].parameters() == {"a": "1"}
    with pytest.raises(TwimlError):
        parse_twiml("<Foo/>")
    with pytest.raises(TwimlError):
        parse_twiml("not xml")


@pytest.mark.anyio
async def test_rest_errors_and_resources() -> None:
    async with TwilioEmulator(speed=20.0) as emu:
        calls = f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Calls"
        auth = (emu.account_sid, emu.auth_token)
        async with httpx.AsyncClient(timeout=5 * UNIT) as http:
            bad = await http.post(f"{calls}.json", data={"To": "+1"}, auth=(emu.account_sid, "x"))
            assert bad.status_code == 401
            assert bad.json()["code"] == 20003
            r = await http.post(
                f"{calls}.json",
                data={"To": "12", "From": "+15550001111", "Twiml": "<Response/>"},
                auth=auth,
            )
            assert (r.status_code, r.json()["code"]) == (400, 21211)
            r = await http.post(
                f"{calls}.json", data={"To": "+15551112222", "From": "+15550001111"}, auth=auth
            )
            assert (r.status_code, r.json()["code"]) == (400, 21205)
            r = await http.get(f"{calls}/CA{'0' * 32}.json", auth=auth)
            assert r.status_code == 404
            assert r.json() == {
                "code": 20404,
                "message": "The requested resource was not found",
                "more_info": "https://www.twilio.com/docs/errors/20404",
                "status": 404,
            }
            twiml = "<Response><Say>Hello there</Say><Hangup/></Response>"
            r = await http.post(
                f"{calls}.json",
                data={"To": "+15551112222", "From": "+15550001111", "Twiml": twiml},
                auth=auth,
            )
            assert r.status_code == 201
            call = r.json()
            assert call["sid"].startswith("CA")
            assert len(call["sid"]) == 34
            assert call["status"] == "queued"
            assert call["direction"] == "outbound-api"
            reports = await emu.wait_calls(timeout_s=5 * UNIT)
            assert reports[0].said == ["Hello there"]
            assert reports[0].outcome == "hangup by TwiML"
            fetched = (await http.get(f"{calls}/{call['sid']}.json", auth=auth)).json()
            assert fetched["status"] == "completed"
            redirect = await http.post(
                f"{calls}/{call['sid']}.json", data={"Twiml": "<Response/>"}, auth=auth
            )
            assert (redirect.status_code, redirect.json()["code"]) == (400, 21220)
        assert [r.status for r in emu.requests] == [401, 400, 400, 404, 201, 200, 400]
        assert emu.requests[4].get("Twiml") == twiml


def test_playout_tracks_last_sound() -> None:
    p = Playout()
    p.add_audio(b"\x00" * F + b"\xff" * F)
    p.tick()
    p.tick()
    p.tick()
    assert (p.ticks, p.last_sound_tick) == (3, 1)


@pytest.mark.anyio
async def test_run_prints_its_url_and_serves(capsys: pytest.CaptureFixture[str]) -> None:
    import anyio

    from switchboard.emulators.twilio import run

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        out = await printed(capsys, "listening on")
        url = out.strip().splitlines()[-1].rsplit(" ", 1)[-1]
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{url}/2010-04-01/Accounts/AC1/Calls/CA1.json")
        assert (r.status_code, r.json()["code"]) == (401, 20003)
        tg.cancel_scope.cancel()
