"""An expired media token opens no call, on either carrier's media socket.

The token the webhook hands the carrier is short-lived (``TokenSigner.ttl_s``): a leaked stream
URL is useless a minute later. Each test mints a token the way the app does, with the app's
signing secret, as if the webhook had answered two minutes ago, and presents it on the media
socket over loopback; the call handler must never see the stream.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from tests.conftest import UNIT
from tests.recording_calls import RecordingCalls
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from switchboard.app.factory import create_app
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer, bind_loopback
from switchboard.emulators.twilio import twilio_signature
from switchboard.security import TokenSigner

pytestmark = pytest.mark.anyio
SECRET = "a-signing-secret-of-more-than-32-characters"
TWILIO_TOKEN = "twilio-auth-token-for-the-media-token-tests"
SID = "CA" + "5" * 32
EXPIRED = TokenSigner(SECRET).sign("call-1", "twilio", carrier_call_id=SID, now=time.time() - 120)


@asynccontextmanager
async def serving(calls: RecordingCalls) -> AsyncIterator[str]:
    """The app on a free loopback port: its ``ws://`` base URL."""
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_settings(
        SWITCHBOARD_PUBLIC_URL=base,
        SWITCHBOARD_SIGNING_SECRET=SECRET,
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
    )
    async with LoopbackServer(create_app(settings, calls=calls), sock=sock, lifespan="off"):
        yield "ws" + base[4:]


async def close_of(ws: ClientConnection) -> tuple[int, str]:
    with anyio.fail_after(5 * UNIT), contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()
    assert ws.close_code is not None
    return int(ws.close_code), ws.close_reason or ""


async def test_twilio_media_with_an_expired_token_is_closed_before_bridging() -> None:
    calls = RecordingCalls()
    async with serving(calls) as ws_base:
        url = f"{ws_base}/twilio/media"
        signed = {"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url)}
        async with connect(url, additional_headers=signed) as ws:
            start = {
                "accountSid": "AC" + "1" * 32,
                "streamSid": "MZ" + "0" * 32,
                "callSid": SID,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"call_id": "call-1", "token": EXPIRED},
            }
            await ws.send(json.dumps({"event": "connected", "protocol": "Call"}))
            await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "start": start}))
            code, reason = await close_of(ws)
    assert (code, reason) == (1008, "media token rejected: media token expired")
    assert calls.runs == []


async def test_telnyx_media_with_an_expired_token_is_refused_at_the_upgrade() -> None:
    calls = RecordingCalls()
    expired = TokenSigner(SECRET).sign(
        "call-1", "telnyx", carrier_call_id="v3:abc", now=time.time() - 120
    )
    async with serving(calls) as ws_base, connect(f"{ws_base}/telnyx/media?token={expired}") as ws:
        code, reason = await close_of(ws)
    assert (code, reason) == (1008, "invalid media token")
    assert calls.runs == []
