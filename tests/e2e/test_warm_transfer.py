"""Warm transfer end to end on Twilio: caller → app → OpenAI emulator, the destination a
conference participant the Twilio emulator plays (a person, nobody, or a machine).

Through the public surface only: the model's ``transfer_call(mode="warm")`` and
``POST /v1/calls/{id}/transfer`` with ``mode: warm``. What is checked is on the carrier's
side: the caller heard the hold sound, the person's leg heard the briefing (agent audio),
caller and person ended up in one conference with the caller's media stream (the agent)
gone — or, when nobody answers, the caller stayed on the stream and the agent said so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from switchboard.agents import AgentBook
from switchboard.audio import pcm16_to_ulaw, read_audio_file, ulaw_to_pcm16, write_audio_file
from switchboard.bridge.thinking import thinking_sound
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioCallReport, TwilioEmulator
from switchboard.emulators.twilio.conference import Callee, Conference
from switchboard.media import AudioFormat, AudioSpec
from tests.audio.signals import best_match, samples
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    agent_book,
    caller_pcm,
    openai_env,
    read_only_call,
    running_app,
    twilio_env,
    until_said,
)
from tests.pyav import needs_av
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
DESK = "+15550100200"
SUMMARY = "Ana Silva wants to move her delivery to Friday"
SORRY = "Sorry, nobody at the desk answered. Can I help you another way?"


def book(**overrides: Any) -> AgentBook:
    fields: dict[str, Any] = {
        "tools": ["end_call", "transfer_call"],
        "directory": {"desk": DESK},
        "transfer_ring_s": 3,
    }
    return agent_book(**(fields | overrides))


def warm_tool_turn(say: str = SORRY) -> dict[str, Any]:
    arguments = {"destination": "desk", "mode": "warm", "summary": SUMMARY}
    return {
        "caller": "please connect me to the desk",
        "tool": {"name": "transfer_call", "arguments": arguments},
        "say": say,
    }


@asynccontextmanager
async def warm_app(
    tmp_path: Path,
    script: list[dict[str, Any]],
    callee: Callee,
    *,
    allow: str = "+1555*",
    agents: AgentBook | None = None,
) -> AsyncIterator[tuple[TwilioEmulator, str, Any]]:
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator(callee=callee) as twilio,
    ):
        env = openai_env(oai) | twilio_env(twilio, "openai")
        env["SWITCHBOARD_OUTBOUND_ALLOW"] = allow
        async with running_app(tmp_path, env, agents=agents or book()) as (base, _s, app):
            yield twilio, base, app
            assert oai.violations == []


async def call(
    twilio: TwilioEmulator, base: str, heard: Path, *, gap_ms: int = 15000
) -> TwilioCallReport:
    pcm = caller_pcm("please connect me to the desk", gap_ms=gap_ms)
    twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm), out=heard)
    (report,) = await twilio.wait_calls(timeout_s=60 * UNIT)
    assert twilio.violations == [] and report.violations == []
    return report


def the_conference(twilio: TwilioEmulator) -> Conference:
    (conf,) = twilio.rooms.conferences.values()
    return conf


def assert_joined(twilio: TwilioEmulator, report: TwilioCallReport, call_id: str) -> None:
    """Caller and person were in one conference; the caller's stream (the agent) had ended."""
    conf = the_conference(twilio)
    assert conf.friendly_name == f"warm-{call_id}"
    (leg,) = twilio.rooms.legs.values()
    assert conf.peak == {report.call_sid, leg.call_sid}
    assert report.outcome == "conference"
    assert report.dialed == [f"conference:warm-{call_id}"]
    assert conf.status == "completed"  # the caller left with endConferenceOnExit
    # The person's leg heard the briefing: a second and more of speech, announced once.
    assert len(leg.announcements) == 1 and leg.told == []
    pcm = samples(ulaw_to_pcm16(bytes(leg.heard)))
    assert len(pcm) > 8000, len(pcm)
    assert float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > 300.0
    # The caller joined after the announcement's last frame had played (announcement-end),
    # within a poll or two of it.
    assert leg.announced_until is not None
    joined = conf.entered_at[report.call_sid]
    print(f"caller joined {1000 * (joined - leg.announced_until):.0f} ms after the briefing")
    assert leg.announced_until <= joined <= leg.announced_until + 2.0 * UNIT


def heard_hold(heard: np.ndarray) -> float:
    """How well the generated hold sound (the soft chime's first note, 200 ms: a short hold
    plays one chime, and a frame late under load would spoil a longer window) is found in
    ``heard`` (8 kHz)."""
    loop = samples(ulaw_to_pcm16(thinking_sound(AudioSpec(AudioFormat.ULAW, 8000))))
    return best_match(loop[:1600], heard)


def assert_heard_hold(heard_path: Path) -> None:
    """The caller heard the generated hold sound while on hold."""
    assert heard_hold(samples(read_audio_file(heard_path, 8000))) > 0.9


async def test_warm_transfer_by_the_tool_briefs_the_person_and_joins_the_caller(
    tmp_path: Path,
) -> None:
    async with warm_app(tmp_path, [warm_tool_turn()], Callee("person", 1.0)) as (tw, base, _):
        report = await call(tw, base, tmp_path / "heard.wav")
    detail = await read_only_call(tmp_path)
    assert_joined(tw, report, detail.record.id)
    assert_heard_hold(tmp_path / "heard.wav")
    events = {e.kind: e.data for e in detail.timeline}
    assert {k: events["call.transferred"][k] for k in ("to", "mode")} == {
        "to": DESK,
        "mode": "warm",
    }
    assert SUMMARY in events["transfer.warm.briefing"]["text"]
    assert events["transfer.warm.briefed"]["by"] == "carrier"  # not a timer of its length
    assert "hold.started" in events
    assert ("agent", SORRY) not in [(t.role, t.text) for t in detail.transcript]


@pytest.mark.parametrize("callee", [Callee("no_answer"), Callee("machine", 1.5)])
async def test_warm_transfer_nobody_or_a_machine_brings_the_caller_back(
    tmp_path: Path, callee: Callee
) -> None:
    async with warm_app(tmp_path, [warm_tool_turn()], callee) as (tw, base, _):
        report = await call(tw, base, tmp_path / "heard.wav", gap_ms=9000)
    detail = await read_only_call(tmp_path)
    assert report.outcome != "conference" and report.dialed == []
    (leg,) = tw.rooms.legs.values()
    assert leg.announcements == [] and not leg.heard  # nobody was briefed
    leg_call = tw.calls[leg.call_sid].resource
    assert leg_call["status"] in ("canceled", "completed", "no-answer"), leg_call
    events = {e.kind: e.data for e in detail.timeline}
    reason = "no_answer" if callee.kind == "no_answer" else "voicemail"
    assert events["transfer.warm.failed"]["reason"] == reason
    assert "call.transferred" not in events
    assert ("agent", SORRY) in [(t.role, t.text) for t in detail.transcript]  # it says so
    (tool,) = [t for t in detail.tool_calls if t.name == "transfer_call"]
    assert "did not go through" in str(tool.result)
    assert_heard_hold(tmp_path / "heard.wav")


async def live_call_id(app: Any) -> str:
    async def one() -> str | None:
        calls = app.state.switchboard.calls.calls
        live = [k for k, a in calls.items() if a.session is not None]
        return live[0] if live else None

    return await eventually_async(one, limit_s=10 * UNIT)


async def api_transfer(base: str, call_id: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
        return await http.post(f"/v1/calls/{call_id}/transfer", json=body)


async def test_warm_transfer_by_the_api_joins_the_caller(tmp_path: Path) -> None:
    script = [{"caller": "please connect me to the desk", "say": "One moment."}]
    async with warm_app(tmp_path, script, Callee("person", 0.5)) as (tw, base, app):
        pcm = caller_pcm("please connect me to the desk", gap_ms=15000)
        tw.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
        call_id = await live_call_id(app)
        resp = await api_transfer(base, call_id, {"destination": "desk", "mode": "warm"})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"call_id": call_id, "status": "transferring"}
        (report,) = await tw.wait_calls(timeout_s=60 * UNIT)
    assert tw.violations == [] and report.violations == []
    assert_joined(tw, report, call_id)
    detail = await read_only_call(tmp_path)
    events = {e.kind: e.data for e in detail.timeline}
    assert {k: events["call.transferred"][k] for k in ("to", "mode")} == {
        "to": DESK,
        "mode": "warm",
    }


async def test_warm_transfer_by_the_api_no_answer_the_agent_says_so(tmp_path: Path) -> None:
    script = [
        {"caller": "please connect me to the desk", "say": "One moment."},
        {"say": SORRY},  # the answer to the note that the transfer did not go through
    ]
    async with warm_app(tmp_path, script, Callee("no_answer")) as (tw, base, app):
        pcm = caller_pcm("please connect me to the desk", gap_ms=12000)
        tw.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
        call_id = await live_call_id(app)
        await until_said(tmp_path, lambda lines: ("agent", "One moment.") in lines)
        resp = await api_transfer(base, call_id, {"destination": DESK, "mode": "warm"})
        assert resp.status_code == 200, resp.text
        busy = await api_transfer(base, call_id, {"destination": DESK, "mode": "warm"})
        assert busy.status_code == 409, busy.text  # one warm transfer at a time
        (report,) = await tw.wait_calls(timeout_s=60 * UNIT)
    assert report.outcome != "conference"
    detail = await read_only_call(tmp_path)
    events = {e.kind: e.data for e in detail.timeline}
    assert events["transfer.warm.failed"]["reason"] == "no_answer"
    assert ("agent", SORRY) in [(t.role, t.text) for t in detail.transcript]


async def test_warm_transfer_refusals_are_clear_4xx_and_dial_nothing(tmp_path: Path) -> None:
    script = [{"caller": "please connect me to the desk", "say": "One moment."}]
    async with warm_app(tmp_path, script, Callee("person"), allow="+1415*") as (tw, base, app):
        pcm = caller_pcm("please connect me to the desk", gap_ms=4000)
        tw.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
        call_id = await live_call_id(app)
        # in the agent's directory, but not in SWITCHBOARD_OUTBOUND_ALLOW: 403
        refused = await api_transfer(base, call_id, {"destination": "desk", "mode": "warm"})
        assert refused.status_code == 403, refused.text
        assert "not allowed" in refused.json()["error"]["message"]
        bad = await api_transfer(base, call_id, {"destination": "desk", "mode": "lukewarm"})
        assert bad.status_code == 422, bad.text
        outside = await api_transfer(base, call_id, {"destination": "+15550100999", "mode": "warm"})
        assert outside.status_code == 403, outside.text  # not in the agent's plan either
        await tw.wait_calls(timeout_s=60 * UNIT)
    assert tw.rooms.conferences == {} and tw.rooms.legs == {}


async def test_a_caller_who_hangs_up_on_hold_takes_the_new_leg_down(tmp_path: Path) -> None:
    agents = book(transfer_ring_s=30)
    async with warm_app(tmp_path, [warm_tool_turn()], Callee("no_answer"), agents=agents) as (
        tw,
        base,
        _,
    ):
        pcm = caller_pcm("please connect me to the desk", gap_ms=8000)
        tw.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm), max_call_s=5.0)
        await tw.wait_calls(timeout_s=60 * UNIT)

        async def dropped() -> str | None:
            legs = list(tw.rooms.legs.values())
            status = tw.calls[legs[0].call_sid].resource["status"] if legs else None
            return status if status == "canceled" else None

        assert await eventually_async(dropped, limit_s=10 * UNIT) == "canceled"
    detail = await read_only_call(tmp_path)
    kinds = [e.kind for e in detail.timeline]
    assert "transfer.warm.started" in kinds and "call.transferred" not in kinds


@needs_av
@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".ogg"])
async def test_the_agents_hold_audio_file_is_what_the_caller_hears_on_hold(
    tmp_path: Path, suffix: str
) -> None:
    """``hold_audio`` (WAV, MP3, Ogg/Opus) replaces the generated chime: stretches of the
    file's own decoded samples are found in what the caller heard, and the chime is not."""
    path = tmp_path / f"hold{suffix}"
    write_audio_file(
        path, speech_like_pcm16("please hold the line", 16000, ms_per_char=60.0), 16000
    )
    agents = book(hold_audio=str(path))
    async with warm_app(tmp_path, [warm_tool_turn()], Callee("person", 1.0), agents=agents) as (
        tw,
        base,
        _,
    ):
        report = await call(tw, base, tmp_path / "heard.wav")
    detail = await read_only_call(tmp_path)
    assert_joined(tw, report, detail.record.id)
    events = {e.kind: e.data for e in detail.timeline}
    assert events["hold.stopped"]["played_ms"] >= 2000, events["hold.stopped"]
    heard = samples(read_audio_file(tmp_path / "heard.wav", 8000))
    reference = samples(read_audio_file(path, 8000))  # the file, decoded as the app decodes it
    assert len(reference) >= 8000  # a second and more of it
    windows = [reference[i : i + 800] for i in range(0, len(reference) - 800, 800)]
    scores = [best_match(w, heard) for w in windows]
    print(f"hold_audio {suffix}: median match {np.median(scores):.3f}, min {min(scores):.3f}")
    # a codec round trip (file codec, then μ-law) of a voice scores above 0.9
    assert float(np.median(scores)) > 0.9, (suffix, scores)
    assert heard_hold(heard) < 0.5  # not the generated chime
