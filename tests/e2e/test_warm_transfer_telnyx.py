"""Warm transfer end to end on Telnyx: caller → app → OpenAI emulator; the destination a
leg the Telnyx emulator dials (a person, nobody, or an answering machine).

Checked on the carrier's side: the caller heard the hold sound, the new leg heard the
briefing played to it (``playback_start`` of agent audio), the caller's stream was stopped
and the two legs bridged — or, when nobody answers, the caller stayed on the stream and the
agent said so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from switchboard.emulators.answering_machine import AnsweringMachine
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.telnyx.calls import EmulatedCall
from switchboard.emulators.telnyx.report import TelnyxCallReport
from tests.audio.signals import samples
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    caller_wav,
    openai_env,
    read_only_call,
    running_app,
    telnyx_env,
    until_said,
)
from tests.e2e.test_warm_transfer import (
    DESK,
    SORRY,
    SUMMARY,
    book,
    heard_hold,
    live_call_id,
    warm_tool_turn,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@asynccontextmanager
async def warm_app(
    tmp_path: Path, script: list[dict[str, Any]], **telnyx_options: Any
) -> AsyncIterator[tuple[TelnyxEmulator, str, Any]]:
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TelnyxEmulator(realtime=True, tail_ms=4000, **telnyx_options) as telnyx,
    ):
        env = openai_env(oai) | telnyx_env(telnyx, "openai")
        env |= {"SWITCHBOARD_OUTBOUND_ALLOW": "+1555*", "TELNYX_CONNECTION_ID": "2000001"}
        async with running_app(tmp_path, env, agents=book()) as (base, _s, app):
            yield telnyx, base, app
            assert oai.violations == []


async def dial_in(telnyx: TelnyxEmulator, base: str, gap_ms: int) -> EmulatedCall:
    return await telnyx.place_inbound_call(
        to="+15550100000",
        from_="+15550111111",
        audio=caller_wav("please connect me to the desk", gap_ms=gap_ms),
        webhook_url=f"{base}/telnyx/webhook",
    )


def the_leg(telnyx: TelnyxEmulator) -> EmulatedCall:
    (leg,) = [c for c in telnyx.calls.values() if c.direction == "outgoing"]
    return leg


def assert_bridged(telnyx: TelnyxEmulator, report: TelnyxCallReport) -> None:
    """The caller's stream was stopped (the agent left) and caller and person bridged; the
    person's leg heard the briefing as agent audio."""
    leg = the_leg(telnyx)
    assert report.commands[-2:] == ["streaming_stop", "bridge"]
    assert report.command_bodies[-1]["call_control_id"] == leg.call_control_id
    assert telnyx.heard_by(report.call_control_id).bridged_with == leg.call_control_id
    assert telnyx.heard_by(leg.call_control_id).bridged_with == report.call_control_id
    assert report.ended_by == "bridged_call_ended"
    assert leg.commands == ["dial", "playback_start"]
    assert leg.command_bodies[0]["answering_machine_detection"] == "detect"
    assert "stream_url" not in leg.command_bodies[0]  # nobody streams the new leg
    pcm = samples(bytes(telnyx.heard_by(leg.call_control_id).played))
    assert len(pcm) > 8000, len(pcm)
    assert float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > 300.0
    assert ("call.bridged", 200) in report.webhooks
    # the join came after the briefing's last frame was played (call.playback.ended)
    played = telnyx.heard_by(leg.call_control_id)
    assert played.played_until is not None and played.bridged_at is not None
    assert played.bridged_at >= played.played_until, (played.bridged_at, played.played_until)


async def test_telnyx_warm_transfer_by_the_tool_briefs_the_person_and_bridges(
    tmp_path: Path,
) -> None:
    async with warm_app(tmp_path, [warm_tool_turn()]) as (telnyx, base, _):
        call = await dial_in(telnyx, base, 15000)
        report = await call.wait(60 * UNIT)
    assert report.violations == [] and telnyx.violations == []
    assert_bridged(telnyx, report)
    assert report.heard_rate == 8000 and heard_hold(samples(report.heard_pcm)) > 0.9
    detail = await read_only_call(tmp_path)
    events = {e.kind: e.data for e in detail.timeline}
    assert (events["call.transferred"]["to"], events["call.transferred"]["mode"]) == (DESK, "warm")
    assert SUMMARY in events["transfer.warm.briefing"]["text"]
    assert events["transfer.warm.briefed"]["by"] == "carrier"  # not a timer of its length
    assert ("agent", SORRY) not in [(t.role, t.text) for t in detail.transcript]


@pytest.mark.parametrize("callee", ["no_answer", "machine"])
async def test_telnyx_warm_transfer_nobody_or_a_machine_brings_the_caller_back(
    tmp_path: Path, callee: str
) -> None:
    options: dict[str, Any] = (
        {"callee_answers": False}
        if callee == "no_answer"
        else {"answering_machine": AnsweringMachine()}
    )
    async with warm_app(tmp_path, [warm_tool_turn()], **options) as (telnyx, base, _):
        call = await dial_in(telnyx, base, 9000)
        report = await call.wait(60 * UNIT)
    assert report.violations == [] and telnyx.violations == []
    assert "bridge" not in report.commands and "streaming_stop" not in report.commands
    leg = the_leg(telnyx)
    assert leg.commands == ["dial", "hangup"] and not telnyx.heard_by(leg.call_control_id).played
    detail = await read_only_call(tmp_path)
    events = {e.kind: e.data for e in detail.timeline}
    reason = "no_answer" if callee == "no_answer" else "voicemail"
    assert events["transfer.warm.failed"]["reason"] == reason
    assert ("agent", SORRY) in [(t.role, t.text) for t in detail.transcript]  # it says so
    assert heard_hold(samples(report.heard_pcm)) > 0.9


async def test_telnyx_warm_transfer_by_the_api(tmp_path: Path) -> None:
    script = [{"caller": "please connect me to the desk", "say": "One moment."}]
    async with warm_app(tmp_path, script) as (telnyx, base, app):
        call = await dial_in(telnyx, base, 15000)
        call_id = await live_call_id(app)
        await until_said(tmp_path, lambda lines: ("agent", "One moment.") in lines)
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            body = {"destination": "desk", "mode": "warm"}
            resp = await http.post(f"/v1/calls/{call_id}/transfer", json=body)
        assert resp.status_code == 200, resp.text
        report = await call.wait(60 * UNIT)
    assert report.violations == [] and telnyx.violations == []
    assert_bridged(telnyx, report)
