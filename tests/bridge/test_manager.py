"""The call manager through its public surface: ``prepare`` → ``run_media`` → the call's end,
the API operations, and the paths only failures take.

The services are real: the OpenAI Realtime emulator is the provider, the Twilio emulator the
carrier's REST API (each test's carrier leg is a call created in it), SQLite the store. The
media socket is the in-memory carrier of ``tests/bridge/carrier.py`` (our ``MediaSocket``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.bridge.carrier import MemoryCarrier
from tests.conftest import UNIT
from tests.e2e.harness import agent_book, caller_pcm
from tests.waiting import eventually

from switchboard.audio import pcm16_to_ulaw
from switchboard.bridge.manager import CallManager
from switchboard.cluster import CallEntry
from switchboard.config import load_settings
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.errors import ConfigError, DialRefused
from switchboard.gateway import Gateway
from switchboard.providers.base import SessionState
from switchboard.store import CallDetail, CallStore
from switchboard.telephony.base import IncomingCall, PreparedCall, TelephonyType
from switchboard.telephony.twilio.media import TwilioMediaCodec

pytestmark = pytest.mark.anyio
TWILIO = TelephonyType.TWILIO
CALLER, DESK = "+15550100111", "+15550100000"


@dataclass
class Bench:
    """A call manager and the emulators behind it."""

    manager: CallManager
    gateway: Gateway
    oai: OpenAIRealtimeEmulator
    twilio: TwilioEmulator

    async def carrier_leg(self) -> str:
        """A live call in the Twilio emulator (the caller waits on the line); its CallSid."""
        auth = (self.twilio.account_sid, self.twilio.auth_token)
        url = f"{self.twilio.base_url}/2010-04-01/Accounts/{self.twilio.account_sid}/Calls.json"
        twiml = '<Response><Pause length="60"/></Response>'
        async with httpx.AsyncClient(auth=auth) as http:
            answer = await http.post(url, data={"To": CALLER, "From": DESK, "Twiml": twiml})
        answer.raise_for_status()
        return str(answer.json()["sid"])

    async def prepare(self, carrier_call_id: str = "CA" + "9" * 32, to: str = DESK) -> PreparedCall:
        return await self.manager.prepare(IncomingCall(TWILIO, carrier_call_id, CALLER, to))

    def bridge(self, call_id: str, carrier: MemoryCarrier) -> asyncio.Task[None]:
        """``run_media`` for a prepared call on ``carrier``, in a task."""
        codec = TwilioMediaCodec()
        started = carrier.start(codec, call_id=call_id)
        run = self.manager.run_media(
            call_id=call_id, carrier=TWILIO, codec=codec, socket=carrier, started=started
        )
        return asyncio.get_running_loop().create_task(run)

    async def ended(self, call_id: str) -> str:
        return await eventually(
            lambda: self.manager.finished.get(call_id), limit_s=20, what=f"{call_id} ending"
        )

    async def record(self, call_id: str) -> CallDetail:
        store = self.gateway.store
        assert store is not None
        detail = await store.get_call(call_id)
        assert detail is not None
        return detail


@asynccontextmanager
async def bench(
    tmp_path: Path,
    *,
    script: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    store: CallStore | None = None,
    **manager_options: Any,
) -> AsyncIterator[Bench]:
    async with (
        OpenAIRealtimeEmulator(script=script or [], ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
    ):
        values = {
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": oai.base_url,
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_BASE_URL": twilio.base_url,
            "SWITCHBOARD_PROVIDER": "openai",
            "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            **(env or {}),
        }
        settings = load_settings(**{k: v for k, v in values.items() if v})
        gateway = Gateway.build(settings, store=store)
        if store is None:
            await gateway.start()
        manager_options.setdefault("agents", agent_book(numbers=[DESK], greeting="Hello."))
        manager = CallManager(gateway, **manager_options)
        try:
            yield Bench(manager, gateway, oai, twilio)
        finally:
            await manager.aclose()
            await gateway.aclose()


async def test_a_prepared_call_is_bridged_recorded_and_ended(tmp_path: Path) -> None:
    script = [{"caller": "what are your hours", "say": "Nine to five."}]
    async with bench(tmp_path, script=script) as b:
        sid = await b.carrier_leg()
        prepared = await b.prepare(sid)
        assert prepared.accepted and prepared.agent == "frontdesk" and prepared.provider == "openai"
        (session,) = b.manager.sessions()
        assert session["status"] == "ringing" and session["carrier_call_id"] == sid
        carrier = MemoryCarrier(call_sid=sid)
        task = b.bridge(prepared.call_id, carrier)
        await eventually(lambda: b.manager.sessions()[0]["status"] == "in-progress")
        await b.manager.update_status(TWILIO, sid, "ringing")  # late: stays in progress
        assert b.manager.sessions()[0]["status"] == "in-progress"
        carrier.say(pcm16_to_ulaw(caller_pcm("what are your hours", gap_ms=1200, lead_ms=200)))
        record = b.manager.calls[prepared.call_id].sink
        assert record is not None
        heard = ("agent", "Nine to five.", False)
        await eventually(lambda: heard in record.transcripts, limit_s=15, what="the reply heard")
        assert b.manager.sessions()[0]["turns"] >= 1  # a turn was timed
        await b.manager.update_status(TWILIO, sid, "completed")  # the caller hung up
        await asyncio.wait_for(task, 10 * UNIT)
        assert b.manager.finished[prepared.call_id] == "caller_hangup"
        assert b.manager.sessions() == []
        detail = await b.record(prepared.call_id)
    assert detail.record.status == "completed" and detail.record.end_reason == "caller_hangup"
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", "Nine to five.") in said and ("caller", "what are your hours") in said


async def test_no_agent_for_the_dialled_number_refuses_the_call(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        prepared = await b.prepare(to="+15550199999")
        assert not prepared.accepted and prepared.reason == "no agent for this number"
        assert b.manager.sessions() == [] and b.oai.connection_count == 0


async def test_a_provider_that_cannot_be_created_refuses_the_call(tmp_path: Path) -> None:
    async with bench(tmp_path, env={"OPENAI_API_KEY": ""}) as b:
        prepared = await b.prepare()
        assert not prepared.accepted and prepared.agent == "frontdesk"
        assert prepared.reason is not None and "OPENAI_API_KEY" in prepared.reason
        assert b.manager.sessions() == []


async def test_a_provider_that_cannot_connect_fails_the_call_and_hangs_up(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, env={"OPENAI_API_KEY": "sk-wrong"}) as b:
        b.oai.api_key = "sk-right"
        sid = await b.carrier_leg()
        prepared = await b.prepare(sid)
        assert prepared.accepted  # the provider connects in the background
        await b.bridge(prepared.call_id, MemoryCarrier(call_sid=sid))
        assert b.manager.finished[prepared.call_id] == "provider_failed"
        (report,) = await b.twilio.wait_calls(timeout_s=10 * UNIT)
        detail = await b.record(prepared.call_id)
    assert report.outcome == "hangup by REST"  # the carrier was told
    assert detail.record.status == "failed" and detail.record.end_reason == "provider_failed"


async def test_the_store_being_down_does_not_stop_the_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'calls.db'}")
    async with bench(tmp_path, store=down) as b:
        prepared = await b.prepare()
        assert prepared.accepted  # taken anyway, unrecorded
        carrier = MemoryCarrier()
        task = b.bridge(prepared.call_id, carrier)
        await eventually(lambda: carrier.heard(), what="the greeting")
        carrier.hang_up()
        await asyncio.wait_for(task, 10 * UNIT)
        assert b.manager.finished[prepared.call_id] == "caller_hangup"
    # an operational error (here: no table) is taken for an outage: the record waits in the
    # store's writer, which says so, and what it holds at shutdown without a spool is counted lost
    logged = [r.getMessage() for r in caplog.records]
    assert any("its record is queued" in m for m in logged)
    assert any("writes lost" in m for m in logged)


async def test_no_media_within_the_timeout_ends_the_call(tmp_path: Path) -> None:
    async with bench(tmp_path, media_timeout_s=0.3 * UNIT) as b:
        prepared = await b.prepare()
        active = b.manager.calls[prepared.call_id]
        assert await b.ended(prepared.call_id) == "no_media"
        assert b.manager.sessions() == []
        assert await b.manager.wait_idle(5 * UNIT)  # the record is final
        assert active.provider.state is not SessionState.CONNECTED  # let go of the provider
        detail = await b.record(prepared.call_id)
        # media that comes after all is refused
        late = MemoryCarrier()
        await b.bridge(prepared.call_id, late)
    assert detail.record.end_reason == "no_media"
    assert late.closed == (1008, "unknown call")


async def test_a_call_held_by_another_node_by_then_is_let_go_not_ended(tmp_path: Path) -> None:
    """No media here within the timeout, but the directory says another node holds the call
    (its media went there and the adoption outlived this node's answer, or it was resumed
    there): this stale copy is dropped quietly, its end neither recorded nor noted."""
    async with bench(tmp_path, media_timeout_s=0.3 * UNIT) as b:
        prepared = await b.prepare()
        elsewhere = CallEntry(prepared.call_id, "node-elsewhere", "twilio", "CA" + "9" * 32)
        await b.gateway.cluster.directory.register(elsewhere)  # as that node registers it
        await eventually(lambda: prepared.call_id not in b.manager.calls, what="let go")
        assert prepared.call_id not in b.manager.finished
        listed = await b.gateway.cluster.directory.get(prepared.call_id)
        assert listed is not None and listed.node_id == "node-elsewhere"
        assert await b.gateway.cluster.get_note(f"ended:{prepared.call_id}") is None


async def test_the_carrier_ending_a_call_before_media_ends_it(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        prepared = await b.prepare("CA" + "7" * 32)
        await b.manager.record_dtmf(TWILIO, "CA" + "7" * 32, "4")
        await b.manager.update_status(TWILIO, "CA" + "7" * 32, "ringing")
        assert b.manager.sessions()[0]["status"] == "ringing"
        await b.manager.update_status(TWILIO, "CA" + "7" * 32, "no-answer")
        assert b.manager.finished[prepared.call_id] == "carrier_no-answer"
        assert await b.manager.wait_idle(5 * UNIT)
        detail = await b.record(prepared.call_id)
    kinds = [e.kind for e in detail.timeline]
    assert "caller.dtmf" in kinds and "carrier.no-answer" in kinds


async def test_an_api_transfer_moves_the_live_call_within_the_dial_plan(
    tmp_path: Path,
) -> None:
    book = agent_book(numbers=[DESK], greeting="Hello.", directory={"billing": "+15550100201"})
    async with bench(tmp_path, agents=book) as b:
        sid = await b.carrier_leg()
        prepared = await b.prepare(sid)
        task = b.bridge(prepared.call_id, MemoryCarrier(call_sid=sid))
        await eventually(lambda: b.manager.sessions()[0]["status"] == "in-progress")
        with pytest.raises(DialRefused):
            await b.manager.transfer(prepared.call_id, "+19005550100")
        with pytest.raises(KeyError):
            await b.manager.transfer("call_nope", "billing")
        await b.manager.transfer(prepared.call_id, "billing")
        await asyncio.wait_for(task, 10 * UNIT)
        (report,) = await b.twilio.wait_calls(timeout_s=10 * UNIT)
        detail = await b.record(prepared.call_id)
    assert report.dialed == ["+15550100201"]
    assert detail.record.end_reason == "transferred"
    transferred = [e.data for e in detail.timeline if e.kind == "call.transferred"]
    assert transferred and transferred[0]["to"] == "+15550100201"


@pytest.mark.parametrize("bridged", [True, False], ids=["live", "before media"])
async def test_an_api_hangup_ends_the_call_through_the_carrier(
    tmp_path: Path, bridged: bool
) -> None:
    async with bench(tmp_path) as b:
        sid = await b.carrier_leg()
        prepared = await b.prepare(sid)
        if bridged:
            task = b.bridge(prepared.call_id, MemoryCarrier(call_sid=sid))
            await eventually(lambda: b.manager.sessions()[0]["status"] == "in-progress")
        await b.manager.hang_up(prepared.call_id)
        if bridged:
            await asyncio.wait_for(task, 10 * UNIT)
        assert await b.ended(prepared.call_id) == "api_hangup"
        (report,) = await b.twilio.wait_calls(timeout_s=10 * UNIT)
        with pytest.raises(KeyError):
            await b.manager.hang_up(prepared.call_id)
    assert report.outcome == "hangup by REST"


async def test_place_call_refuses_what_it_cannot_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    allow = {"SWITCHBOARD_OUTBOUND_ALLOW": "+1555*"}
    async with bench(tmp_path, env=allow) as b:
        with pytest.raises(ConfigError, match="SWITCHBOARD_PUBLIC_URL"):
            await b.manager.place_call(carrier=TWILIO, to=CALLER, from_=DESK)
        with pytest.raises(ConfigError, match="telnyx is not configured"):
            await b.manager.place_call(carrier=TelephonyType.TELNYX, to=CALLER, from_=DESK)
        with caplog.at_level(logging.WARNING), pytest.raises(DialRefused):
            await b.manager.place_call(carrier=TWILIO, to="+19005550100", from_=DESK)
    public = {**allow, "SWITCHBOARD_PUBLIC_URL": "https://voice.example.com"}
    async with bench(tmp_path, env=public) as b:
        with pytest.raises(ConfigError, match="unknown agent 'nobody'"):
            await b.manager.place_call(carrier=TWILIO, to=CALLER, from_=DESK, agent="nobody")
    assert not [r for r in b.twilio.requests if r.path.endswith("/Calls.json")]
