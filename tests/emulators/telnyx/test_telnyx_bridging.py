"""The Telnyx emulator's warm-transfer commands on their own (raw HTTP, raw webhooks):
``playback_start``, ``speak``, ``bridge``, and dials nobody answers."""

from __future__ import annotations

import io
import wave
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from tests.conftest import UNIT
from tests.emulators.telnyx.test_telnyx_emulator import KEY, command, hooks_for

from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.loopback import LoopbackServer
from switchboard.emulators.telnyx import TelnyxEmulator

pytestmark = pytest.mark.anyio


async def dial(emu: TelnyxEmulator, **body: Any) -> str:
    async with httpx.AsyncClient() as client:
        resp = await client.post(
            f"{emu.base_url}/v2/calls",
            json={"connection_id": "c1", "to": "+15550100200", "from": "+15550100000", **body},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["call_control_id"])


def wav16k(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return out.getvalue()


async def test_a_dial_nobody_answers_ends_with_timeout_after_timeout_secs() -> None:
    emu = TelnyxEmulator(api_key=KEY, realtime=False, speed=10.0, callee_answers=False)
    async with emu, hooks_for(emu) as hooks:
        ccid = await dial(emu, timeout_secs=5)
        await hooks.next("call.initiated")
        hangup = await hooks.next("call.hangup")  # 5 s on a 10x clock
    assert hangup["payload"]["hangup_cause"] == "timeout"
    report = emu.calls[ccid].report
    assert report is not None and report.ended_by == "no_answer"


async def test_playback_speak_and_bridge() -> None:
    audio = wav16k(speech_like_pcm16("hello there", 16000))
    served = Starlette(routes=[Route("/b.wav", lambda _r: Response(audio, media_type="audio/wav"))])
    emu = TelnyxEmulator(
        api_key=KEY, realtime=False, speed=20.0, talk_s=1.0, answer_delay_ms=10_000
    )
    async with emu, hooks_for(emu) as hooks, LoopbackServer(served) as files:
        person = await dial(emu)
        await hooks.next("call.initiated")
        ringing = await command(emu, person, "playback_start", audio_url=f"{files.base_url}/b.wav")
        assert ringing.status_code == 422  # not answered yet
        await hooks.next("call.answered")
        played = await command(emu, person, "playback_start", audio_url=f"{files.base_url}/b.wav")
        assert played.status_code == 200
        assert (await hooks.next("call.playback.started"))["payload"]["media_url"].endswith("b.wav")
        ended = await hooks.next("call.playback.ended")
        assert ended["payload"]["status"] == "completed"
        no_voice = await command(emu, person, "speak", payload="hi")
        assert no_voice.status_code == 422
        said = await command(emu, person, "speak", payload="hi there", voice="female")
        assert said.status_code == 200
        await hooks.next("call.speak.started")
        await hooks.next("call.speak.ended")
        caller = await emu.place_inbound_call(to="+15550100000", from_="+15550111111")
        await hooks.next("call.initiated")
        early = await command(emu, caller.call_control_id, "bridge", call_control_id=person)
        assert early.status_code == 422  # the caller is not answered
        assert (await command(emu, caller.call_control_id, "answer")).status_code == 200
        await hooks.next("call.answered")
        itself = await command(emu, person, "bridge", call_control_id=person)
        assert itself.status_code == 422
        joined = await command(emu, caller.call_control_id, "bridge", call_control_id=person)
        assert joined.status_code == 200
        bridged = {(await hooks.next("call.bridged"))["payload"]["call_control_id"] for _ in "ab"}
        assert bridged == {person, caller.call_control_id}
        report = await caller.wait(20 * UNIT)
    heard = emu.heard_by(person)
    assert len(heard.played) == len(speech_like_pcm16("hello there", 8000))  # 16 kHz → 8 kHz
    assert heard.spoken == ["hi there"] and heard.bridged_with == caller.call_control_id
    assert report.ended_by == "bridged_call_ended"
    assert len(emu.violations) == 4  # the four refusals above
