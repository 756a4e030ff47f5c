"""Twilio routes end to end over loopback: the simulated caller against the app.

A small recording CallHandler stands in for the call manager: its ``run_media`` greets the
caller, echoes caller audio back as media frames and sends marks, so the caller has something
to hear and acknowledge.
"""

from __future__ import annotations

import base64
import json
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from tests.conftest import UNIT
from tests.recording_calls import TONE, RecordingCalls
from tests.waiting import eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from switchboard.app.factory import create_app
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer, bind_loopback
from switchboard.emulators.twilio import TwilioCaller, TwilioEmulator, run_call, twilio_signature
from switchboard.telephony.base import (
    CallDirection,
    TelephonyType,
)
from switchboard.telephony.twilio import TwilioAdapter

pytestmark = pytest.mark.anyio
TOKEN = "test-auth-token"
ACCOUNT = "AC" + "1" * 32


def twilio_calls(**options: Any) -> RecordingCalls:
    """The shared recording handler, greeting the caller first (10 frames) as the bridge does."""
    return RecordingCalls(**({"greeting_frames": 10, "mark_every": 25} | options))


@asynccontextmanager
async def serve(calls: RecordingCalls, **env: str) -> AsyncIterator[tuple[str, FastAPI]]:
    """The app on a free port, with SWITCHBOARD_PUBLIC_URL set to where it really listens."""
    sock = bind_loopback()  # the port is known before the app is built
    public = {"SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{sock.getsockname()[1]}"}
    base_env = {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT, **public}
    app = create_app(load_settings(**{**base_env, **env}), calls=calls)
    async with LoopbackServer(app, sock=sock, lifespan="off") as srv:
        yield srv.base_url, app


def _form(sid: str = "CA" + "a" * 32, status: str = "ringing") -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": "+15550001111",
        "To": "+15551112222",
    }


async def test_call_end_to_end(tmp_path: Path) -> None:
    calls = twilio_calls()
    wav_in = tmp_path / "in.wav"
    with wave.open(str(wav_in), "wb") as w:  # 16 kHz input: the caller converts it
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        t = np.arange(16000) / 16000
        w.writeframes((np.sin(2 * np.pi * 300 * t) * 9000).astype("<i2").tobytes())
    out = tmp_path / "heard.wav"
    async with serve(calls) as (base, _):
        report = await run_call(
            server=base,
            audio=wav_in,
            out=out,
            realtime=False,
            auth_token=TOKEN,
            account_sid=ACCOUNT,
            dtmf="5",
            linger_s=0.6,
        )
    assert report.violations == []
    assert report.webhook_status == 200
    assert report.outcome == "caller hung up"
    [incoming] = calls.prepared
    assert incoming.carrier is TelephonyType.TWILIO
    assert incoming.carrier_call_id == report.call_sid
    assert (incoming.from_number, incoming.account_id) == ("+15005550006", ACCOUNT)
    assert report.custom_parameters["call_id"] == "call-1"
    [run] = calls.runs
    assert run.call_id == "call-1"
    assert run.started.stream_id == report.stream_sid
    assert run.started.call_id == report.call_sid
    assert run.stopped
    assert run.dtmf == ["5"]
    assert calls.dtmf == []  # Twilio reports DTMF in band only, never through a webhook
    assert report.dtmf_sent == "5"
    # every frame the caller sent was echoed and heard; every mark was acknowledged
    # (the echo of the last frame or two may still be in flight when the caller hangs up)
    assert report.frames_sent - 2 <= run.echoed <= report.frames_sent
    assert report.frames_sent + 8 <= report.frames_received <= report.frames_sent + 10
    assert report.marks_received == 1 + run.echoed // 25
    assert report.marks_received - 1 <= report.marks_acked <= report.marks_received
    assert run.acks == report.mark_names[: len(run.acks)]
    assert run.acks[0] == "greeting"
    # the caller hangs up with the last echoed silence (behind the greeting) still queued
    assert (report.frames_received - 12) * 20 <= report.heard_ms
    assert report.heard_ms <= report.frames_received * 20
    assert report.stream_ms < 5000  # hung up after its audio + linger, not at max_call_s
    assert run.stats["malformed"] == run.stats["gaps"] == 0
    with wave.open(str(out), "rb") as heard:
        assert heard.getframerate() == 8000
        assert heard.getnframes() == pytest.approx(report.stream_ms * 8, abs=160)
    # status callback arrived, signed, with the duration
    [(sid, status, details)] = calls.statuses
    assert (sid, status) == (report.call_sid, "completed")
    assert "CallDuration" in details
    assert report.webhooks == [("completed", 204)]


async def test_clear_drops_buffered_audio_and_returns_marks() -> None:
    calls = twilio_calls(flood_then_clear=True)
    async with serve(calls) as (base, _):
        caller = TwilioCaller(
            webhook_url=f"{base}/twilio/voice",
            auth_token=TOKEN,
            account_sid=ACCOUNT,
            audio=TONE[:1600],
            speed=10.0,
            linger_s=0.4,
            sign_upgrade="wss",  # the other URL form is accepted too
        )
        report = await caller.run()
    assert report.violations == []
    assert report.clears == 1
    assert report.dropped_ms >= 1000
    assert report.heard_ms < report.frames_received * 20 - 1000
    assert {"greeting", "flood"} <= set(calls.runs[0].acks)
    assert report.marks_acked == report.marks_received


async def test_rejected_call_says_and_hangs_up() -> None:
    calls = twilio_calls(accept=False)
    async with serve(calls) as (base, _):
        report = await run_call(
            server=base, audio=None, out=None, auth_token=TOKEN, account_sid=ACCOUNT
        )
    assert report.outcome == "hangup by TwiML"
    assert report.said
    assert report.stream_sid is None
    assert calls.runs == []


async def test_forged_unsigned_and_replayed_webhooks_are_403() -> None:
    calls = twilio_calls()
    async with serve(calls) as (base, _), httpx.AsyncClient(timeout=5 * UNIT) as http:
        url = f"{base}/twilio/voice"
        form = _form()
        r = await http.post(url, data=form)
        assert (r.status_code, r.text) == (403, "forbidden")
        forged = twilio_signature("wrong-token", url, form.items())
        r = await http.post(url, data=form, headers={"X-Twilio-Signature": forged})
        assert r.status_code == 403
        other_url = twilio_signature(TOKEN, "https://elsewhere.example/twilio/voice", form.items())
        r = await http.post(url, data=form, headers={"X-Twilio-Signature": other_url})
        assert r.status_code == 403
        good = {"X-Twilio-Signature": twilio_signature(TOKEN, url, form.items())}
        tampered = {**form, "From": "+19999999999"}
        assert (await http.post(url, data=tampered, headers=good)).status_code == 403
        first = await http.post(url, data=form, headers=good)
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/xml")
        assert "<Connect action=" in first.text and "<Stream" in first.text
        replay = await http.post(url, data=form, headers=good)
        assert replay.status_code == 403
        assert len(calls.prepared) == 1
        # status callbacks: same checks, and (CallSid, CallStatus, SequenceNumber) dedupe
        surl = f"{base}/twilio/status"
        status = {**_form(status="completed"), "SequenceNumber": "3", "CallDuration": "7"}
        sig = {"X-Twilio-Signature": twilio_signature(TOKEN, surl, status.items())}
        assert (await http.post(surl, data=status)).status_code == 403
        assert (await http.post(surl, data=status, headers=sig)).status_code == 204
        assert (await http.post(surl, data=status, headers=sig)).status_code == 403
        assert len(calls.statuses) == 1
        assert calls.statuses[0][2]["CallDuration"] == "7"


async def test_other_account_rejected() -> None:
    calls = twilio_calls()
    async with serve(calls) as (base, _), httpx.AsyncClient() as http:
        url = f"{base}/twilio/voice"
        form = {**_form(), "AccountSid": "AC" + "9" * 32}
        sig = {"X-Twilio-Signature": twilio_signature(TOKEN, url, form.items())}
        assert (await http.post(url, data=form, headers=sig)).status_code == 403
    assert calls.prepared == []


async def test_sha256_shared_key_variant() -> None:
    calls = twilio_calls()
    async with (
        serve(calls, TWILIO_WEBHOOK_SHARED_KEY="shared-secret") as (base, _),
        httpx.AsyncClient() as http,
    ):
        url = f"{base}/twilio/voice?x=1"
        form = _form()
        settings_hdr = {"X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256"}
        sig = twilio_signature("shared-secret", url, form.items(), algorithm="HMAC_SHA256")
        r = await http.post(url, data=form, headers={**settings_hdr, "X-Twilio-Signature": sig})
        assert r.status_code == 200
        sha1 = twilio_signature(TOKEN, url, form.items())  # SHA1 sig with a SHA256 header
        r = await http.post(url, data=form, headers={**settings_hdr, "X-Twilio-Signature": sha1})
        assert r.status_code == 403


async def test_unconfigured_is_503_naming_variables_in_the_log_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = twilio_calls()
    app = create_app(
        load_settings(TWILIO_AUTH_TOKEN=None, SWITCHBOARD_PUBLIC_URL=None), calls=calls
    )
    async with LoopbackServer(app, lifespan="off") as srv, httpx.AsyncClient() as http:
        for path in ("/twilio/voice", "/twilio/status"):
            caplog.clear()
            r = await http.post(f"{srv.base_url}{path}", data=_form())
            assert r.status_code == 503
            assert "not configured" in r.json()["error"]["message"]
            # the operator learns what to set; an unauthenticated caller does not
            assert "TWILIO_AUTH_TOKEN" not in r.text
            assert "SWITCHBOARD_PUBLIC_URL" not in r.text
            assert "TWILIO_AUTH_TOKEN" in caplog.text
            assert "SWITCHBOARD_PUBLIC_URL" in caplog.text


async def _media_close(base: str, headers: dict[str, str], frames: list[str | bytes]) -> int | None:
    ws_url = "ws" + base[4:] + "/twilio/media"
    async with connect(ws_url, additional_headers=headers) as ws:
        for frame in frames:
            await ws.send(frame)
        received: list[str | bytes] = []
        try:
            while True:
                received.append(await ws.recv())
        except ConnectionClosed:
            pass
        assert received == []  # no audio (or anything) before authentication
        return ws.close_code


def _start(params: dict[str, str]) -> str:
    start = {
        "accountSid": ACCOUNT,
        "streamSid": "MZ" + "b" * 32,
        "callSid": "CA" + "a" * 32,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": params,
    }
    return json.dumps({"event": "start", "sequenceNumber": "1", "start": start})


async def test_media_socket_authentication() -> None:
    calls = twilio_calls()
    async with serve(calls, SWITCHBOARD_MEDIA_START_TIMEOUT_S=str(0.3 * UNIT)) as (base, app):
        ws_url = "ws" + base[4:] + "/twilio/media"
        signed = {
            "X-Twilio-Signature": twilio_signature(TOKEN, "http" + base[4:] + "/twilio/media")
        }
        assert await _media_close(base, {}, []) == 1008  # unsigned upgrade
        forged = {"X-Twilio-Signature": twilio_signature("nope", ws_url)}
        assert await _media_close(base, forged, []) == 1008
        # signed upgrade, but the media token is missing / forged / for another call
        assert await _media_close(base, signed, [_start({"call_id": "call-1"})]) == 1008
        bad = {"call_id": "call-1", "token": "x.y"}
        assert await _media_close(base, signed, [_start(bad)]) == 1008
        signer = app.state.switchboard.gateway.signer
        other = {"call_id": "call-1", "token": signer.sign("call-2", "twilio")}
        assert await _media_close(base, signed, [_start(other)]) == 1008
        telnyx = {"call_id": "call-1", "token": signer.sign("call-1", "telnyx")}
        assert await _media_close(base, signed, [_start(telnyx)]) == 1008
        # never sends start: closed after the timeout
        connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        assert await _media_close(base, signed, [connected]) == 1008
        assert await _media_close(base, signed, [b"\x00\x01"]) == 1008  # binary frame
        assert calls.runs == []
        # a good token gets through to run_media
        sid = "CA" + "a" * 32  # the callSid _start sends
        good = {"call_id": "call-1", "token": signer.sign("call-1", "twilio", carrier_call_id=sid)}
        stop = json.dumps({"event": "stop", "sequenceNumber": "2", "stop": {}})
        async with connect(ws_url, additional_headers=signed) as ws:
            await ws.send(_start(good))
            greeting = json.loads(await ws.recv())
            assert greeting["event"] == "media"
            assert base64.b64decode(greeting["media"]["payload"]) == TONE[:160]
            await ws.send(stop)
        assert calls.runs[0].call_id == "call-1"


async def test_outbound_call_through_rest_emulator_reaches_the_app() -> None:
    calls = twilio_calls(greeting_frames=5)
    async with (
        serve(calls) as (base, _),
        TwilioEmulator(
            account_sid=ACCOUNT, auth_token=TOKEN, audio=TONE[:800], speed=10.0, linger_s=0.3
        ) as emu,
    ):
        adapter = TwilioAdapter(
            account_sid=ACCOUNT, auth_token=TOKEN, base_url=emu.base_url, public_url=base
        )
        try:
            sid = await adapter.place_call(to="+15551112222", from_="+15550001111", call_id="c-7")
        finally:
            await adapter.aclose()
        [report] = await emu.wait_calls(timeout_s=10 * UNIT)
    assert report.call_sid == sid
    [incoming] = calls.prepared
    assert (incoming.call_id, incoming.direction) == ("c-7", CallDirection.OUTBOUND)
    assert incoming.to_number == "+15551112222"
    assert report.outcome == "caller hung up"
    assert report.mark_names[0] == "greeting"
    assert report.marks_acked >= 1
    posted = ["initiated", "ringing", "in-progress", "completed"]
    assert report.webhooks == [(s, 204) for s in posted]
    assert [(c[0], c[1]) for c in calls.statuses] == [(sid, s) for s in posted]


async def _until(predicate: Any, timeout_s: float = 5.0) -> None:
    await eventually(predicate, limit_s=timeout_s)  # a recording fake's state


async def test_dtmf_reconnects_the_stream_and_transfer_dials() -> None:
    calls = twilio_calls(greeting_frames=2)
    async with (
        serve(calls) as (base, _),
        TwilioEmulator(
            account_sid=ACCOUNT, auth_token=TOKEN, audio=TONE, speed=5.0, linger_s=30.0
        ) as emu,
    ):
        adapter = TwilioAdapter(
            account_sid=ACCOUNT, auth_token=TOKEN, base_url=emu.base_url, public_url=base
        )
        try:
            caller = emu.dial_in(f"{base}/twilio/voice")
            await _until(lambda: len(calls.runs) == 1)
            sid = caller.report.call_sid
            await adapter.send_dtmf(sid, "42")
            await _until(lambda: len(calls.runs) == 2)
            await adapter.transfer_call(sid, "+15553334444")
            [report] = await emu.wait_calls(timeout_s=10 * UNIT)
        finally:
            await adapter.aclose()
    assert report.digits_played == "42"
    assert report.dialed == ["+15553334444"]
    assert report.outcome == "dialed"
    assert [c.carrier_call_id for c in calls.prepared] == [sid, sid]
    assert calls.runs[0].stopped  # the redirect stopped the first stream with `stop`
    assert calls.runs[1].stopped
    assert report.violations == []
