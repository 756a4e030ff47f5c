"""The emulator's ``media_leg_factory`` hook: another caller can take the media leg."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.emulators.telnyx.test_telnyx_emulator import (
    KEY,
    TIMEOUT,
    command,
    hooks_for,
    media_server,
    pytestmark,
)
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection

from switchboard.emulators.telnyx import LegResult, TelnyxEmulator, WireFormat

__all__ = ["pytestmark"]


class NoteLeg:
    """A minimal media leg: connects, sends one note, waits for ``request_stop`` or ``hold_s``."""

    def __init__(self, name: str, url: str, hold_s: float) -> None:
        self.name, self.url, self.hold_s = name, url, hold_s
        self.stopped = asyncio.Event()
        self.reason = ""

    def request_stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.stopped.set()

    async def run(self) -> LegResult:
        async with connect(self.url) as ws:
            await ws.send(json.dumps({"event": "note", "from": self.name}))
            try:
                await asyncio.wait_for(self.stopped.wait(), self.hold_s)
            except TimeoutError:
                self.reason = self.reason or "caller_hangup"
        return LegResult(stream_id=self.name, frames_sent=1, ended_by=self.reason)


class Factory:
    def __init__(self, name: str, hold_s: float = 0.2) -> None:
        self.name, self.hold_s = name, hold_s
        self.calls: list[dict[str, Any]] = []
        self.legs: list[NoteLeg] = []

    def __call__(
        self,
        *,
        url: str,
        start: dict[str, Any],
        inbound: WireFormat,
        outbound: WireFormat | None,
        call_control_id: str,
    ) -> NoteLeg:
        self.calls.append(
            {"url": url, "start": start, "in": inbound, "out": outbound, "ccid": call_control_id}
        )
        self.legs.append(NoteLeg(self.name, url, self.hold_s))
        return self.legs[-1]


async def _record(ws: ServerConnection, seen: dict[str, Any]) -> None:
    async for raw in ws:
        seen["frames"].append(json.loads(raw))


async def test_factories_replace_the_wav_caller_and_the_call_ends_with_them() -> None:
    # each leg outlives the setup of both calls, so the hooks arrive in this order
    default, per_call = Factory("default", 1.5), Factory("per_call", 1.5)
    async with (
        TelnyxEmulator(api_key=KEY, media_leg_factory=default) as emu,
        hooks_for(emu) as hooks,
        media_server(_record) as (url, seen),
    ):
        calls = []
        for from_, factory in (("+2", None), ("+3", per_call)):
            calls.append(
                await emu.place_inbound_call(to="+1", from_=from_, media_leg_factory=factory)
            )
            ccid = (await hooks.next("call.initiated"))["payload"]["call_control_id"]
            assert (await command(emu, ccid, "answer")).status_code == 200
            await hooks.next("call.answered")
            body = {"stream_url": url, "stream_bidirectional_mode": "rtp"}
            assert (await command(emu, ccid, "streaming_start", **body)).status_code == 200
            await hooks.next("streaming.started")
        reports = [await call.wait(TIMEOUT) for call in calls]
    assert [c["ccid"] for c in default.calls] == [calls[0].call_control_id]
    assert [c["ccid"] for c in per_call.calls] == [calls[1].call_control_id]
    first = default.calls[0]
    assert first["url"] == url and first["start"]["from"] == "+2"
    assert first["in"].codec == "PCMU" and first["out"].codec == "PCMU"
    assert sorted(f["from"] for f in seen["frames"]) == ["default", "per_call"]
    assert [r.ended_by for r in reports] == ["caller_hangup", "caller_hangup"]
    assert [r.stream_id for r in reports] == ["default", "per_call"]
    assert emu.violations == []


async def test_an_app_hangup_stops_a_custom_leg() -> None:
    factory = Factory("held", hold_s=30.0)
    async with (
        TelnyxEmulator(api_key=KEY, media_leg_factory=factory) as emu,
        hooks_for(emu) as hooks,
        media_server(_record) as (url, _seen),
    ):
        call = await emu.place_inbound_call(to="+1", from_="+2")
        ccid = (await hooks.next("call.initiated"))["payload"]["call_control_id"]
        await command(emu, ccid, "answer", stream_url=url, stream_bidirectional_mode="rtp")
        await hooks.next("call.answered")
        await hooks.next("streaming.started")
        assert (await command(emu, ccid, "hangup")).status_code == 200
        report = await call.wait(TIMEOUT)
    assert factory.legs[0].reason == "app_hangup"
    assert report.ended_by == "app_hangup" and report.hangup_source == "callee"
