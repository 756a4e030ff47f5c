"""Telnyx routes end to end: the app on loopback, the Telnyx emulator, a recording CallHandler."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from tests.conftest import UNIT
from tests.recording_calls import RecordingCalls
from tests.waiting import eventually
from websockets.asyncio.client import connect

from switchboard.app.factory import create_app
from switchboard.app.state import AppState
from switchboard.config import Settings, load_settings
from switchboard.emulators.common import pcm16_rms, speech_like_pcm16
from switchboard.emulators.telnyx import LoopbackServer, TelnyxEmulator, bind_loopback, wav_bytes
from switchboard.telephony.amd import Verdict
from switchboard.telephony.base import (
    CallDirection,
    IncomingCall,
    PreparedCall,
    TelephonyType,
)
from switchboard.telephony.telnyx import TelnyxAdapter, encode_client_state

pytestmark = pytest.mark.anyio
KEY = "KEY_routes_secret"


@dataclass
class Rig:
    emu: TelnyxEmulator
    app: FastAPI
    server: LoopbackServer
    calls: RecordingCalls

    @property
    def webhook_url(self) -> str:
        return self.server.base_url + "/telnyx/webhook"


@asynccontextmanager
async def rig(calls: RecordingCalls, **emu_options: Any) -> AsyncIterator[Rig]:
    """The emulator, then the app (its public URL known before it is built), on loopback."""
    async with TelnyxEmulator(api_key=KEY, realtime=False, **emu_options) as emu:
        sock = bind_loopback()
        settings = load_settings(
            TELNYX_API_KEY=KEY,
            TELNYX_PUBLIC_KEY=emu.public_key_b64,
            TELNYX_BASE_URL=emu.base_url,
            TELNYX_CONNECTION_ID="conn-out",
            SWITCHBOARD_PUBLIC_URL=f"http://127.0.0.1:{sock.getsockname()[1]}",
        )
        app = create_app(settings, calls=calls)
        async with LoopbackServer(app, sock=sock) as server:
            emu.webhook_url = server.base_url + "/telnyx/webhook"
            yield Rig(emu, app, server, calls)
        # The app's lifespan closed the Telnyx client at shutdown.
        adapter = get_state_of(app).telnyx.adapter
        assert adapter is None or adapter.is_closed


def get_state_of(app: FastAPI) -> AppState:
    state: AppState = app.state.switchboard
    return state


def caller_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    return wav_bytes(speech_like_pcm16("x" * 10, rate, ms_per_char=seconds * 100), rate)


# -- full calls ------------------------------------------------------------------------------------
async def test_full_inbound_call_with_retried_webhooks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="switchboard")
    calls = RecordingCalls()
    async with rig(calls, duplicate_webhooks=True) as r:
        call = await r.emu.place_inbound_call(
            to="+15550001111", from_="+15550002222", audio=caller_wav(1.0), dtmf="42"
        )
        report = await call.wait(20 * UNIT)
        state = get_state_of(r.app)
    # The command sequence: answer, then bidirectional rtp streaming to our media URL + token.
    assert report.commands == ["answer", "streaming_start"]
    answer, stream = report.command_bodies
    assert answer["client_state"] == encode_client_state("call-1")
    url = urlparse(stream["stream_url"])
    assert (url.scheme, url.netloc, url.path) == ("ws", r.server.base_url[7:], "/telnyx/media")
    token = parse_qs(url.query)["token"][0]
    assert state.gateway.signer.verify(token, carrier="telnyx").call_id == "call-1"
    assert stream["stream_bidirectional_mode"] == "rtp"
    assert stream["stream_bidirectional_codec"] == "PCMU"
    assert stream["stream_codec"] == "PCMU"
    # Every webhook was delivered twice and processed once.
    assert len(calls.prepared) == 1
    incoming = calls.prepared[0]
    assert incoming.direction is CallDirection.INBOUND
    assert (incoming.from_number, incoming.to_number) == ("+15550002222", "+15550001111")
    assert incoming.carrier_call_id == call.call_control_id
    assert [s for _, s, _ in calls.statuses] == ["answered", "completed"]
    assert calls.statuses[-1][2] == {"cause": "normal_clearing", "source": "caller"}
    assert calls.dtmf == ["4", "2"]
    assert calls.runs[0].dtmf == ["4", "2"]
    assert all(status == 200 for _, status in report.webhooks)
    hooks = [w for w, _ in report.webhooks]
    assert hooks[:3] == ["call.initiated", "call.answered", "streaming.started"]
    assert hooks[-2:] == ["streaming.stopped", "call.hangup"]
    # Media: the caller spoke 1 s, heard its echo, and the marks were acknowledged at playout.
    assert calls.runs[0].call_id == "call-1"
    assert calls.runs[0].started.call_id == call.call_control_id
    assert calls.runs[0].stopped
    assert report.frames_sent == 50
    assert report.frames_received == 50
    assert 950 <= report.heard_ms <= 1000
    assert report.marks == [f"echo-{n}" for n in range(10, 51, 10)]
    assert calls.runs[0].acks == report.marks
    assert report.violations == []
    assert r.emu.violations == []
    heard = tmp_path / "heard.wav"
    report.write_wav(heard)
    assert heard.stat().st_size > 44
    assert pcm16_rms(report.heard_pcm) > 0.01
    assert "streaming_start" in report.summary()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("switchboard.app.telnyx")]
    assert any("streaming.started" in m for m in ours)
    assert not any(token[:20] in m for m in caplog.messages)  # the media token is never logged
    assert KEY not in caplog.text


async def test_wideband_call_streams_l16_16k() -> None:
    calls = RecordingCalls(wideband=True)
    async with rig(calls) as r:
        call = await r.emu.place_inbound_call(to="+1", from_="+2", audio=caller_wav(0.4, 16000))
        report = await call.wait(20 * UNIT)
    stream = report.command_bodies[1]
    assert stream["stream_bidirectional_codec"] == "L16"
    assert stream["stream_bidirectional_sampling_rate"] == 16000
    assert calls.runs[0].started.audio.sample_rate == 16000
    assert report.heard_rate == 16000
    assert report.frames_received == report.frames_sent == 20
    assert pcm16_rms(report.heard_pcm) > 0.01  # byte order agreed on both ends
    assert report.violations == []


async def test_out_of_order_media_reaches_the_handler_in_order() -> None:
    calls = RecordingCalls(mark_every=1000)
    async with rig(calls) as r:
        call = await r.emu.place_inbound_call(
            to="+1", from_="+2", audio=caller_wav(0.4), swap_every=3
        )
        report = await call.wait(20 * UNIT)
    assert report.frames_received == report.frames_sent == 20
    assert report.violations == []


async def test_refused_call_is_hung_up_not_answered() -> None:
    calls = RecordingCalls(accept=False)
    async with rig(calls) as r:
        call = await r.emu.place_inbound_call(to="+1", from_="+2")
        report = await call.wait(20 * UNIT)
    assert report.commands == ["hangup"]
    assert report.hangup_source == "callee"
    assert calls.runs == []
    assert [s for _, s, _ in calls.statuses] == ["completed"]


async def test_outbound_call_streams_after_answer() -> None:
    calls = RecordingCalls()
    async with rig(calls, audio=caller_wav(0.3)) as r:
        adapter = TelnyxAdapter(api_key=KEY, base_url=r.emu.base_url, connection_id="conn-out")
        ccid = await adapter.place_call(
            to="+15550009999",
            from_="+15550001111",
            client_state=encode_client_state("out-7"),
            webhook_url=r.webhook_url,
        )
        await adapter.aclose()
        report = await r.emu.calls[ccid].wait(20 * UNIT)
    assert report.commands == ["dial", "streaming_start"]
    (prepared,) = calls.prepared
    assert prepared.direction is CallDirection.OUTBOUND
    assert prepared.call_id == "out-7"
    assert calls.runs[0].call_id == "out-7"
    assert report.frames_sent == 15
    assert report.violations == []


# -- webhook checks --------------------------------------------------------------------------------
def _settings(public_key: str | None) -> Settings:
    return load_settings(
        TELNYX_API_KEY=KEY if public_key else None,
        TELNYX_PUBLIC_KEY=public_key,
        TELNYX_BASE_URL="http://127.0.0.1:9",
        SWITCHBOARD_PUBLIC_URL="https://voice.example.com" if public_key else None,
    )


def _event(event_type: str, event_id: str = "ev-1", **payload: Any) -> bytes:
    data = {"event_type": event_type, "id": event_id, "record_type": "event"}
    return json.dumps(
        {"data": {**data, "payload": {"call_control_id": "v3:c", **payload}}}
    ).encode()


def _signed(key: Ed25519PrivateKey, body: bytes, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "telnyx-signature-ed25519": base64.b64encode(
            key.sign(stamp.encode() + b"|" + body)
        ).decode(),
        "telnyx-timestamp": stamp,
    }


@asynccontextmanager
async def http_app(calls: RecordingCalls, key: Ed25519PrivateKey | None) -> AsyncIterator[Any]:
    public = None
    if key is not None:
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        public = base64.b64encode(raw).decode()
    app = create_app(_settings(public), calls=calls)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        yield client
    await get_state_of(app).aclose()  # no lifespan here: queued commands, then the client


async def test_unconfigured_telnyx_is_503_naming_the_variables_in_the_log_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with http_app(RecordingCalls(), None) as client:
        response = await client.post("/telnyx/webhook", content=b"{}")
    assert response.status_code == 503
    assert "not configured" in response.json()["error"]["message"]
    for name in ("TELNYX_API_KEY", "TELNYX_PUBLIC_KEY", "SWITCHBOARD_PUBLIC_URL"):
        assert name not in response.text  # an unauthenticated caller learns nothing
        assert name in caplog.text  # the operator does


@pytest.mark.parametrize("case", ["missing", "other_key", "tampered", "stale"])
async def test_bad_signatures_are_403(case: str, caplog: pytest.LogCaptureFixture) -> None:
    key = Ed25519PrivateKey.generate()
    body = _event("call.hangup", hangup_cause="normal_clearing")
    headers = {
        "missing": {},
        "other_key": _signed(Ed25519PrivateKey.generate(), body),
        "tampered": _signed(key, body.replace(b"v3:c", b"v3:d")),
        "stale": _signed(key, body, ts=int(time.time()) - 301),
    }[case]
    calls = RecordingCalls()
    async with http_app(calls, key) as client:
        response = await client.post("/telnyx/webhook", content=body, headers=headers)
    assert response.status_code == 403
    assert calls.statuses == []
    assert "rejected Telnyx webhook" in caplog.text


async def test_retried_webhook_is_processed_once() -> None:
    key = Ed25519PrivateKey.generate()
    body = _event("call.hangup", hangup_cause="user_busy", hangup_source="callee")
    calls = RecordingCalls()
    async with http_app(calls, key) as client:
        first = await client.post("/telnyx/webhook", content=body, headers=_signed(key, body))
        again = await client.post("/telnyx/webhook", content=body, headers=_signed(key, body))
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {"status": "duplicate"}
    assert calls.statuses == [("v3:c", "completed", {"cause": "user_busy", "source": "callee"})]


async def test_unknown_event_is_acknowledged(caplog: pytest.LogCaptureFixture) -> None:
    key = Ed25519PrivateKey.generate()
    body = _event("call.speak.ended")
    calls = RecordingCalls()
    caplog.set_level("INFO")
    async with http_app(calls, key) as client:
        response = await client.post("/telnyx/webhook", content=body, headers=_signed(key, body))
    assert response.status_code == 200
    assert "ignoring Telnyx event call.speak.ended" in caplog.text


async def test_amd_events_reach_the_call_handler_as_verdicts() -> None:
    key = Ed25519PrivateKey.generate()
    calls = RecordingCalls()
    bodies = [
        _event("call.machine.premium.detection.ended", "ev-1", result="machine"),
        _event("call.machine.premium.greeting.ended", "ev-2", result="beep_detected"),
    ]
    async with http_app(calls, key) as client:
        for body in bodies:
            response = await client.post(
                "/telnyx/webhook", content=body, headers=_signed(key, body)
            )
            assert response.status_code == 200
        await eventually(lambda: len(calls.verdicts) == 2, what="both verdicts")
    assert calls.verdicts == [
        (Verdict.MACHINE, "machine"),
        (Verdict.MACHINE_READY, "beep_detected"),
    ]


@dataclass
class GatedCalls(RecordingCalls):
    """``prepare`` waits for ``gate``; ``log`` shows the order the routes called us in."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    log: list[str] = field(default_factory=list)

    async def prepare(self, call: IncomingCall) -> PreparedCall:
        self.log.append("prepare")
        await self.gate.wait()
        self.log.append("prepared")
        return await super().prepare(call)

    async def update_status(
        self, carrier: TelephonyType, carrier_call_id: str, status: str, **details: str
    ) -> None:
        self.log.append(status)
        await super().update_status(carrier, carrier_call_id, status, **details)


async def test_webhooks_are_acknowledged_at_once_and_handled_in_order() -> None:
    key = Ed25519PrivateKey.generate()
    initiated = _event("call.initiated", "ev-1", direction="incoming", to="+1", **{"from": "+2"})
    hangup = _event("call.hangup", "ev-2", hangup_cause="originator_cancel")
    calls = GatedCalls()
    async with http_app(calls, key) as client:
        first = await client.post(
            "/telnyx/webhook", content=initiated, headers=_signed(key, initiated)
        )
        second = await client.post("/telnyx/webhook", content=hangup, headers=_signed(key, hangup))
        assert (first.status_code, second.status_code) == (200, 200)
        assert calls.log == ["prepare"]  # answered while prepare is still running
        calls.gate.set()
    # The hangup waited for the call's earlier event (whose answer failed: no API here).
    assert calls.log == ["prepare", "prepared", "completed"]


async def test_dtmf_webhook_is_recorded() -> None:
    key = Ed25519PrivateKey.generate()
    body = _event("call.dtmf.received", digit="#")
    calls = RecordingCalls()
    async with http_app(calls, key) as client:
        await client.post("/telnyx/webhook", content=body, headers=_signed(key, body))
    assert calls.dtmf == ["#"]


async def test_malformed_signed_body_is_400() -> None:
    key = Ed25519PrivateKey.generate()
    async with http_app(RecordingCalls(), key) as client:
        response = await client.post("/telnyx/webhook", content=b"[]", headers=_signed(key, b"[]"))
    assert response.status_code == 400


# -- media socket checks ---------------------------------------------------------------------------
@asynccontextmanager
async def media_app(calls: RecordingCalls) -> AsyncIterator[tuple[FastAPI, LoopbackServer]]:
    app = create_app(_settings(None), calls=calls)
    async with LoopbackServer(app) as server:
        yield app, server


@pytest.mark.parametrize("token", [None, "forged.token", "twilio"])
async def test_media_socket_without_a_valid_token_is_closed_1008(token: str | None) -> None:
    calls = RecordingCalls()
    async with media_app(calls) as (app, server):
        if token == "twilio":
            token = get_state_of(app).gateway.signer.sign("call-1", "twilio")
        query = f"?token={token}" if token else ""
        async with connect(f"{server.ws_url}/telnyx/media{query}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1008
    assert calls.runs == []


async def test_media_socket_without_start_times_out() -> None:
    calls = RecordingCalls()
    async with media_app(calls) as (app, server):
        state = get_state_of(app)
        state.telnyx.start_timeout_s = 0.2 * UNIT
        token = state.gateway.signer.sign("call-1", "telnyx")
        async with connect(f"{server.ws_url}/telnyx/media?token={token}") as ws:
            await ws.send(json.dumps({"event": "connected", "version": "1.0.0"}))
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
    assert calls.runs == []
