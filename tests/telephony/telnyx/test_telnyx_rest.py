"""The Call Control adapter against the Telnyx emulator over loopback."""

from __future__ import annotations

import base64

import httpx
import pytest

from switchboard.config import load_settings
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.errors import ConfigError, TelephonyError
from switchboard.telephony.telnyx import TelnyxAdapter, create_adapter

pytestmark = pytest.mark.anyio
KEY = "KEY_test_secret_123"


async def test_create_adapter_reads_settings() -> None:
    async with TelnyxEmulator(api_key=KEY) as emu:
        settings = load_settings(
            TELNYX_API_KEY=KEY, TELNYX_BASE_URL=emu.base_url, TELNYX_CONNECTION_ID="conn-1"
        )
        adapter = create_adapter(settings)
        try:
            await adapter.setup()
            ccid = await adapter.place_call(to="+15550001111", from_="+15550002222")
        finally:
            await adapter.aclose()
    assert ccid in emu.calls
    assert emu.commands[0][1] == "dial"
    assert emu.commands[0][2]["connection_id"] == "conn-1"
    assert emu.violations == []


async def test_commands_reach_the_api_with_bearer_key_and_command_id() -> None:
    async with TelnyxEmulator(api_key=KEY) as emu, httpx.AsyncClient() as client:
        adapter = TelnyxAdapter(api_key=KEY, base_url=emu.base_url, client=client)
        call = await emu.place_inbound_call(to="+15550001111", from_="+15550002222")
        ccid = call.call_control_id
        await adapter.answer_call(ccid, client_state=base64.b64encode(b"x").decode())
        await adapter.send_dtmf(ccid, "12#")
        await adapter.transfer_call(ccid, "+15550003333")
        await adapter.aclose()  # an injected client stays open
        assert not client.is_closed
    actions = [(a, b) for c, a, b in emu.commands if c == ccid]
    assert [a for a, _ in actions] == ["answer", "send_dtmf", "transfer"]
    assert all(len(b["command_id"]) == 36 for _, b in actions)
    assert actions[1][1]["digits"] == "12#"
    assert actions[2][1]["to"] == "+15550003333"
    assert emu.violations == []


async def test_start_streaming_asks_for_bidirectional_rtp() -> None:
    async with TelnyxEmulator(api_key=KEY) as emu:
        adapter = TelnyxAdapter(api_key=KEY, base_url=emu.base_url)
        call = await emu.place_inbound_call(to="+1", from_="+2")
        await adapter.answer_call(call.call_control_id)
        # Nothing listens on port 9: the caller's leg fails, which is fine here.
        await adapter.start_streaming(
            call.call_control_id, stream_url="ws://127.0.0.1:9/x", codec="L16", sample_rate=16000
        )
        await adapter.aclose()
        report = await call.wait(10)
    body = report.command_bodies[1]
    assert body["stream_bidirectional_mode"] == "rtp"
    assert body["stream_bidirectional_codec"] == "L16"
    assert body["stream_codec"] == "L16"
    assert body["stream_bidirectional_sampling_rate"] == 16000
    assert [w for w, _ in report.webhooks][-2:] == ["streaming.failed", "call.hangup"]


async def test_hangup_on_an_ended_call_is_success() -> None:
    async with TelnyxEmulator(api_key=KEY) as emu:
        adapter = TelnyxAdapter(api_key=KEY, base_url=emu.base_url)
        call = await emu.place_inbound_call(to="+1", from_="+2")
        await adapter.hang_up(call.call_control_id)
        await call.wait(10)
        await adapter.hang_up(call.call_control_id)  # 422 / 90018: already ended
        with pytest.raises(TelephonyError) as info:
            await adapter.send_dtmf(call.call_control_id, "1")
        await adapter.aclose()
    assert info.value.status == 422
    assert info.value.code == "90018"
    assert call.commands == ["hangup", "hangup", "send_dtmf"]


async def test_bad_key_is_a_telephony_error_without_the_key() -> None:
    async with TelnyxEmulator(api_key=KEY) as emu:
        wrong = "KEY_wrong_very_secret"
        adapter = TelnyxAdapter(api_key=wrong, base_url=emu.base_url)
        with pytest.raises(TelephonyError) as info:
            await adapter.answer_call("v3:nope")
        await adapter.aclose()
    assert info.value.status == 401
    assert info.value.code == "10009"
    assert wrong not in str(info.value)
    assert KEY not in str(info.value)


async def test_invalid_command_is_rejected_with_422() -> None:
    async with TelnyxEmulator(api_key=KEY) as emu:
        adapter = TelnyxAdapter(api_key=KEY, base_url=emu.base_url)
        call = await emu.place_inbound_call(to="+1", from_="+2")
        with pytest.raises(TelephonyError) as info:  # streaming before answer
            await adapter.start_streaming(call.call_control_id, stream_url="ws://127.0.0.1:9/")
        await adapter.aclose()
    assert info.value.status == 422
    assert len(emu.violations) == 1


async def test_missing_key_and_connection_are_config_errors() -> None:
    adapter = TelnyxAdapter(api_key=None)
    with pytest.raises(ConfigError) as info:
        await adapter.setup()
    assert info.value.missing == ("TELNYX_API_KEY",)
    adapter = TelnyxAdapter(api_key=KEY)
    with pytest.raises(ConfigError) as info:
        await adapter.place_call(to="+1", from_="+2")
    assert info.value.missing == ("TELNYX_CONNECTION_ID",)
    await adapter.aclose()


async def test_transient_failures_are_retried_with_the_same_command_id() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        if len(seen) == 1:
            return httpx.Response(503, json={"errors": [{"code": "10011", "title": "busy"}]})
        return httpx.Response(200, json={"data": {"result": "ok"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = TelnyxAdapter(api_key=KEY, base_url="http://telnyx.invalid", client=client)
        await adapter.answer_call("v3:abc")
    assert len(seen) == 2
    assert seen[0] == seen[1]


async def test_unreachable_api_is_a_telephony_error() -> None:
    adapter = TelnyxAdapter(api_key=KEY, base_url="http://127.0.0.1:9", attempts=1)
    with pytest.raises(TelephonyError, match="ConnectError"):
        await adapter.answer_call("v3:abc")
    await adapter.aclose()
