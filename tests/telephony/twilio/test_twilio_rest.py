"""TwilioAdapter against the Twilio emulator over loopback."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import httpx
import pytest
from tests.conftest import UNIT

from switchboard.config import load_settings
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.errors import ConfigError, TelephonyError
from switchboard.telephony.base import TelephonyAdapter
from switchboard.telephony.twilio import TwilioAdapter, create_adapter

pytestmark = pytest.mark.anyio
TO, FROM = "+15551112222", "+15550001111"
HOLD = '<Response><Pause length="60"/></Response>'


def _xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314  # TwiML we generated ourselves


def _adapter(emu: TwilioEmulator, **kw: str) -> TwilioAdapter:
    settings = load_settings(
        TWILIO_ACCOUNT_SID=emu.account_sid,
        TWILIO_AUTH_TOKEN=kw.get("token", emu.auth_token),
        TWILIO_BASE_URL=emu.base_url,
        SWITCHBOARD_PUBLIC_URL=kw.get("public", "http://127.0.0.1:9"),
    )
    adapter = create_adapter(settings)
    assert isinstance(adapter, TelephonyAdapter)
    return adapter


async def test_place_call_and_hang_up() -> None:
    async with TwilioEmulator(speed=10.0) as emu:
        adapter = _adapter(emu)
        await adapter.setup()
        try:
            sid = await adapter.place_call(to=TO, from_=FROM, twiml=HOLD)
            assert (await adapter.fetch_call(sid))["status"] == "in-progress"
            await adapter.hang_up(sid)
            [report] = await emu.wait_calls(timeout_s=5 * UNIT)
            assert report.outcome == "hangup by REST"
            assert (await adapter.fetch_call(sid))["status"] == "completed"
            await adapter.hang_up(sid)  # already ended: success
            await adapter.hang_up("CA" + "f" * 32)  # 404 / 20404: success
        finally:
            await adapter.aclose()
        create = emu.requests[0]
        assert create.get("To") == TO
        assert create.get("From") == FROM
        assert create.get("StatusCallback") == "http://127.0.0.1:9/twilio/status"
        events = [v for k, v in create.form if k == "StatusCallbackEvent"]
        assert events == ["initiated", "ringing", "answered", "completed"]
        assert emu.requests[2].get("Status") == "completed"


async def test_place_call_default_url_carries_call_id() -> None:
    async with TwilioEmulator(speed=10.0) as emu:
        adapter = _adapter(emu)
        try:
            await adapter.place_call(to=TO, from_=FROM, call_id="call-1", timeout_s=20)
        finally:
            await adapter.aclose()
        await emu.wait_calls(timeout_s=5 * UNIT)
        assert emu.requests[0].get("Url") == "http://127.0.0.1:9/twilio/voice?call_id=call-1"
        assert emu.requests[0].get("Timeout") == "20"


async def test_transfer_redirects_live_call_to_dial() -> None:
    async with TwilioEmulator(speed=10.0) as emu:
        adapter = _adapter(emu)
        try:
            sid = await adapter.place_call(to=TO, from_=FROM, twiml=HOLD)
            await adapter.transfer_call(sid, "+15553334444", caller_id=FROM)
        finally:
            await adapter.aclose()
        [report] = await emu.wait_calls(timeout_s=5 * UNIT)
        assert report.dialed == ["+15553334444"]
        dial = _xml(emu.requests[1].get("Twiml") or "")[0]
        assert (dial.tag, dial.get("callerId"), dial[0].text) == ("Dial", FROM, "+15553334444")


async def test_send_dtmf_plays_digits_then_redirects_back() -> None:
    async with TwilioEmulator(speed=10.0) as emu:
        adapter = _adapter(emu, public="http://127.0.0.1:9")
        try:
            sid = await adapter.place_call(to=TO, from_=FROM, twiml=HOLD)
            await adapter.send_dtmf(sid, "12#")
            with pytest.raises(TelephonyError):
                await adapter.send_dtmf(sid, "12x")
        finally:
            await adapter.aclose()
        [report] = await emu.wait_calls(timeout_s=5 * UNIT)
        assert report.digits_played == "12#"
        root = _xml(emu.requests[1].get("Twiml") or "")
        assert root[1].tag == "Redirect"
        assert (root[1].text or "").startswith("http://127.0.0.1:9/twilio/voice?resume=")


async def test_errors_carry_status_and_code_never_the_token() -> None:
    async with TwilioEmulator() as emu:
        adapter = _adapter(emu, token="not-the-token-s3cr3t")
        try:
            with pytest.raises(TelephonyError) as info:
                await adapter.place_call(to=TO, from_=FROM, twiml=HOLD)
            assert (info.value.status, info.value.code) == (401, "20003")
            assert "s3cr3t" not in str(info.value)
            assert "s3cr3t" not in repr(adapter)
        finally:
            await adapter.aclose()
        good = _adapter(emu)
        try:
            with pytest.raises(TelephonyError) as info:
                await good.place_call(to="12", from_=FROM, twiml=HOLD)
            assert (info.value.status, info.value.code) == (400, "21211")
            with pytest.raises(TelephonyError) as info:
                await good.transfer_call("CA" + "e" * 32, "+15553334444")
            assert info.value.code == "20404"
        finally:
            await good.aclose()


async def test_unreachable_and_unconfigured() -> None:
    adapter = TwilioAdapter(
        account_sid="AC1", auth_token="t", base_url="http://127.0.0.1:9", timeout_s=2 * UNIT
    )
    with pytest.raises(TelephonyError, match="ConnectError"):
        await adapter.hang_up("CA1")
    await adapter.aclose()
    with pytest.raises(ConfigError) as info:
        await TwilioAdapter(account_sid=None, auth_token=None).setup()
    assert info.value.missing == ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    async with httpx.AsyncClient() as client:
        shared = TwilioAdapter(account_sid="AC1", auth_token="t", client=client)
        await shared.setup()
        await shared.aclose()
        assert not client.is_closed  # an injected client belongs to its owner


async def test_a_get_on_a_connection_the_server_dropped_is_sent_again() -> None:
    """The server closes a kept-alive connection as the next request arrives (uvicorn's and
    Twilio's idle timeouts): a GET is sent once more on a new connection; a POST is not."""
    import asyncio

    body = b'{"sid": "CA1", "status": "in-progress"}'
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        if connections % 2 == 1:  # dropped unanswered
            writer.close()
            return
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = TwilioAdapter(
        account_sid="AC" + "0" * 32, auth_token="t", base_url=f"http://127.0.0.1:{port}"
    )
    try:
        assert (await adapter.fetch_call("CA1"))["status"] == "in-progress"
        assert connections == 2
        with pytest.raises(TelephonyError, match="failed"):
            await adapter.update_call("CA1", Status="completed")  # dropped: not sent again
        assert connections == 3
    finally:
        await adapter.aclose()
        server.close()
        await server.wait_closed()
