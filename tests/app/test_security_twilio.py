"""Security of the Twilio routes over loopback (issue #26): replays, token binding, limits.

The app runs under uvicorn on a free port; requests are signed as Twilio signs them
(``switchboard.emulators.twilio.twilio_signature``, independent of the app's validator). A small
recording CallHandler stands in for the call manager: it counts ``prepare`` calls (each one
would open a provider session) and can hold ``prepare`` open or make it fail once.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import UNIT
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from switchboard.app.factory import create_app
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer, bind_loopback
from switchboard.emulators.twilio import twilio_signature
from switchboard.errors import CallerDisconnected
from switchboard.telephony.amd import Verdict
from switchboard.telephony.base import (
    IncomingCall,
    MediaCodec,
    MediaSocket,
    PreparedCall,
    StreamStarted,
    StreamStopped,
    TelephonyType,
)

pytestmark = pytest.mark.anyio
TOKEN = "twilio-auth-token-for-the-security-tests"
ACCOUNT = "AC" + "1" * 32
SID = "CA" + "a" * 32


@dataclass
class Calls:
    """A CallHandler that counts what the routes ask for."""

    gate: asyncio.Event | None = None
    fail_once: bool = False
    prepared: list[IncomingCall] = field(default_factory=list)
    runs: list[tuple[str, StreamStarted]] = field(default_factory=list)

    async def prepare(self, call: IncomingCall) -> PreparedCall:
        self.prepared.append(call)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_once:
            self.fail_once = False
            raise RuntimeError("the store is down")
        return PreparedCall(call_id=f"call-{len(self.prepared)}", accepted=True)

    async def run_media(
        self,
        *,
        call_id: str,
        carrier: TelephonyType,
        codec: MediaCodec,
        socket: MediaSocket,
        started: StreamStarted,
    ) -> None:
        self.runs.append((call_id, started))
        try:
            while True:
                if any(
                    isinstance(e, StreamStopped) for e in codec.receive(await socket.receive_text())
                ):
                    return
        except CallerDisconnected:  # the socket closed without a stop
            return

    async def update_status(
        self, carrier: TelephonyType, carrier_call_id: str, status: str, **details: str
    ) -> None:
        return None

    async def record_dtmf(self, carrier: TelephonyType, carrier_call_id: str, digit: str) -> None:
        return None

    async def machine_detection(
        self, carrier: TelephonyType, carrier_call_id: str, verdict: Verdict, answered_by: str
    ) -> None:
        return None

    async def aclose(self) -> None:
        return None


@asynccontextmanager
async def serve(calls: Calls, **env: str) -> AsyncIterator[tuple[str, FastAPI]]:
    """The app on a free loopback port whose SWITCHBOARD_PUBLIC_URL is where it listens."""
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_settings(
        **{
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "SWITCHBOARD_PUBLIC_URL": base,
            **env,
        }
    )
    app = create_app(settings, calls=calls)
    async with LoopbackServer(app, sock=sock, lifespan="off"):
        yield base, app


def _form(sid: str = SID, status: str = "ringing") -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": "+15550001111",
        "To": "+15551112222",
    }


def _signed(url: str, form: dict[str, str], key: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": twilio_signature(key, url, form.items())}


def _token_of(twiml: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', twiml)
    assert match is not None, twiml
    return match.group(1)


# -- item 3: the replay guard ------------------------------------------------------------------
async def test_replay_with_a_changed_unsigned_header_is_refused() -> None:
    calls = Calls()
    async with serve(calls) as (base, _), httpx.AsyncClient(timeout=5 * UNIT) as http:
        url, form = f"{base}/twilio/voice", _form()
        headers = _signed(url, form) | {"I-Twilio-Idempotency-Token": "first"}
        assert (await http.post(url, data=form, headers=headers)).status_code == 200
        headers["I-Twilio-Idempotency-Token"] = "second"  # not signed: anyone can change it
        replay = await http.post(url, data=form, headers=headers)
    assert replay.status_code == 403
    assert len(calls.prepared) == 1


async def test_concurrent_copies_get_one_call_and_one_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="switchboard.app.twilio")
    gate = asyncio.Event()
    calls = Calls(gate=gate)
    async with serve(calls) as (base, _), httpx.AsyncClient(timeout=5 * UNIT) as http:
        url, form = f"{base}/twilio/voice", _form()
        copies = [
            asyncio.create_task(http.post(url, data=form, headers=_signed(url, form)))
            for _ in range(3)
        ]
        with anyio.fail_after(5 * UNIT):  # both later copies wait for the first one's answer
            while caplog.text.count("repeated while it is prepared") < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        gate.set()
        answers = await asyncio.gather(*copies)
    # Twilio retrying while the first copy is prepared gets the first copy's answer: one
    # provider session, one media token, whichever copy Twilio listens to.
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({_token_of(a.text) for a in answers}) == 1
    assert len(calls.prepared) == 1


async def test_a_call_sid_is_answered_once() -> None:
    calls = Calls()
    async with serve(calls) as (base, _), httpx.AsyncClient(timeout=5 * UNIT) as http:
        url, form = f"{base}/twilio/voice", _form()
        assert (await http.post(url, data=form, headers=_signed(url, form))).status_code == 200
        # Another signed request for the same CallSid (what a replay looks like once the
        # replay guard's 10 minutes are over): refused, no second provider session.
        later = {**form, "CallStatus": "in-progress"}
        assert (await http.post(url, data=later, headers=_signed(url, later))).status_code == 403
        elsewhere = f"{base}/twilio/voice?call_id=mine"
        r = await http.post(elsewhere, data=form, headers=_signed(elsewhere, form))
        assert r.status_code == 403
        # our own DTMF redirect comes back with a fresh resume value; an old one is refused
        stale = f"{base}/twilio/voice?resume={int(time.time()) - 3600}.abcdef"
        r = await http.post(stale, data=later, headers=_signed(stale, later))
        assert r.status_code == 403
        fresh = f"{base}/twilio/voice?resume={int(time.time())}.abcdef"
        r = await http.post(fresh, data=later, headers=_signed(fresh, later))
        assert r.status_code == 200
        # ...once: a copy is a replay, even re-encoded (other order, a value repeated: the
        # signature, and so the replay key, is the same) and with a new idempotency token
        body = "&".join(f"{k}={v}" for k, v in reversed(later.items())) + f"&CallSid={SID}"
        r = await http.post(
            fresh,
            content=body.replace("+", "%2B"),
            headers=_signed(fresh, later)
            | {
                "Content-Type": "application/x-www-form-urlencoded",
                "I-Twilio-Idempotency-Token": "another",
            },
        )
        assert r.status_code == 403
        # another CallSid is another call
        other = _form(sid="CA" + "b" * 32)
        assert (await http.post(url, data=other, headers=_signed(url, other))).status_code == 200
    assert [c.carrier_call_id for c in calls.prepared] == [SID, SID, "CA" + "b" * 32]


async def test_a_failed_request_is_forgotten_so_twilios_retry_passes() -> None:
    calls = Calls(fail_once=True)
    async with serve(calls) as (base, _), httpx.AsyncClient(timeout=5 * UNIT) as http:
        url, form = f"{base}/twilio/voice", _form()
        first = await http.post(url, data=form, headers=_signed(url, form))
        retry = await http.post(url, data=form, headers=_signed(url, form))
    assert (first.status_code, retry.status_code) == (500, 200)
    assert "<Connect action=" in retry.text and "<Stream" in retry.text


# -- item 4: the media token names the CallSid -------------------------------------------------
def _start(call_sid: str, params: dict[str, str]) -> str:
    start = {
        "accountSid": ACCOUNT,
        "streamSid": "MZ" + "b" * 32,
        "callSid": call_sid,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": params,
    }
    return json.dumps({"event": "start", "sequenceNumber": "1", "start": start})


async def _close_code(base: str, frames: list[str]) -> int | None:
    ws_url = "ws" + base[4:] + "/twilio/media"
    signed = {"X-Twilio-Signature": twilio_signature(TOKEN, ws_url)}
    async with connect(ws_url, additional_headers=signed) as ws:
        for frame in frames:
            await ws.send(frame)
        try:
            while True:
                await ws.recv()
        except ConnectionClosed:
            pass
        return ws.close_code


async def test_media_token_is_bound_to_the_call_sid() -> None:
    calls = Calls()
    async with serve(calls) as (base, _), httpx.AsyncClient(timeout=5 * UNIT) as http:
        url, form = f"{base}/twilio/voice", _form()
        twiml = (await http.post(url, data=form, headers=_signed(url, form))).text
        params = {"call_id": "call-1", "token": _token_of(twiml)}
        stop = json.dumps({"event": "stop", "sequenceNumber": "2", "stop": {}})
        # the token of call SID on a socket announcing another CallSid (whose carrier control
        # the bridge would then drive: hang-ups, transfers)
        with anyio.fail_after(5 * UNIT):
            assert await _close_code(base, [_start("CA" + "c" * 32, params), stop]) == 1008
        assert calls.runs == []
        assert await _close_code(base, [_start(SID, params), stop]) != 1008  # the right call
    assert [(call_id, s.call_id) for call_id, s in calls.runs] == [("call-1", SID)]


# -- item 6: limits on the Twilio routes -------------------------------------------------------
async def test_oversized_webhook_is_413_before_anything_is_read() -> None:
    calls = Calls()
    async with serve(calls, SWITCHBOARD_WEBHOOK_MAX_BODY="4096") as (base, _):
        url = f"{base}/twilio/voice"
        form = _form() | {"Padding": "x" * 8000}
        async with httpx.AsyncClient(timeout=5 * UNIT) as http:
            r = await http.post(url, data=form, headers=_signed(url, form))
            assert r.status_code == 413
            assert "4096" in r.json()["error"]["message"]

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
                for _ in range(10):
                    yield b"x" * 1024

            r = await http.post(url, content=chunks(), headers=_signed(url, {}))
            assert r.status_code == 413
            small = _form()
            r = await http.post(url, data=small, headers=_signed(url, small))
            assert r.status_code == 200
    assert len(calls.prepared) == 1


async def test_media_socket_without_start_is_closed_after_the_setting() -> None:
    calls = Calls()
    async with serve(calls, SWITCHBOARD_MEDIA_START_TIMEOUT_S=str(0.3 * UNIT)) as (base, _):
        connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        started = time.monotonic()
        with anyio.fail_after(3 * UNIT):  # the old fixed 10 s wait would fail here
            assert await _close_code(base, [connected]) == 1008
    assert time.monotonic() - started >= 0.3 * UNIT
    assert load_settings().media_start_timeout_s == 5.0  # the default


# -- item 2: an empty SharedKey is no key ------------------------------------------------------
async def test_empty_shared_key_signs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_WEBHOOK_SHARED_KEY", "")  # "TWILIO_WEBHOOK_SHARED_KEY=" in .env
    calls = Calls()
    async with serve(calls) as (base, _), httpx.AsyncClient(timeout=5 * UNIT) as http:
        url, form = f"{base}/twilio/voice", _form()
        headers = {
            "X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256",
            "X-Twilio-Signature": twilio_signature("", url, form.items(), algorithm="HMAC_SHA256"),
        }
        assert (await http.post(url, data=form, headers=headers)).status_code == 403
        ws_url = "ws" + base[4:] + "/twilio/media"
        upgrade = headers | {
            "X-Twilio-Signature": twilio_signature("", ws_url, algorithm="HMAC_SHA256")
        }
        async with connect(ws_url, additional_headers=upgrade) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1008
    assert calls.prepared == []


# -- item 5: a non-ASCII signature is a bad signature, not a crash -----------------------------
async def test_non_ascii_signature_is_403() -> None:
    calls = Calls()
    async with serve(calls) as (base, _), httpx.AsyncClient(timeout=5 * UNIT) as http:
        url, form = f"{base}/twilio/voice", _form()
        r = await http.post(url, data=form, headers={b"X-Twilio-Signature": "é".encode()})
        assert r.status_code == 403
        ws_url = "ws" + base[4:] + "/twilio/media"
        async with connect(ws_url, additional_headers={"X-Twilio-Signature": "é"}) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1008
    assert calls.prepared == []
