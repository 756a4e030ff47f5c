"""Answering-machine detection end to end: ``POST /v1/calls`` with ``machine_detection``, the
carrier emulators' callee a machine (greeting, beep, silence) or a person, the OpenAI
emulator as the agent. What the callee heard is measured: nothing over the machine's
greeting, the message after the beep, the person the agent's greeting.
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from switchboard.agents import AgentBook
from switchboard.audio import pcm16_to_ulaw, read_audio_file
from switchboard.emulators.answering_machine import AnsweringMachine
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.store import CallDetail
from tests.audio.signals import samples
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    agent_book,
    caller_pcm,
    openai_env,
    read_only_call,
    running_app,
    telnyx_env,
)
from tests.e2e.harness import twilio_env as twilio_settings

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CALLEE = "+15550100999"
MESSAGE = "This is the dental office: your appointment is tomorrow at nine. Goodbye."
GREETING = "Hello, thanks for calling."


@asynccontextmanager
async def outbound(
    tmp_path: Path,
    carrier: str,
    machine: AnsweringMachine | None,
    detection: dict[str, Any] | None,
    *,
    script: list[dict[str, Any]] | None = None,
    callee_pcm: bytes | None = None,
    agents: AgentBook | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Place one outbound call with ``detection`` to a callee that is ``machine`` (None: a
    person saying ``callee_pcm``); yields, once the call has ended, what the callee heard
    (``heard``, PCM16 8 kHz), the carrier's report and the app's metrics text."""
    out: dict[str, Any] = {}
    heard_path = tmp_path / "heard.wav"
    async with OpenAIRealtimeEmulator(script=script or [], ms_per_char=30.0) as oai:
        if carrier == "twilio":
            emulator: Any = TwilioEmulator(
                answering_machine=machine,
                out=heard_path,
                linger_s=4.0,
                max_call_s=40.0,
                audio=pcm16_to_ulaw(callee_pcm) if callee_pcm else None,
            )
        else:
            emulator = TelnyxEmulator(
                realtime=True,
                tail_ms=4000,
                answering_machine=machine,
                audio=_wav(callee_pcm) if callee_pcm else None,
            )
        async with emulator:
            env = openai_env(oai) | {"SWITCHBOARD_OUTBOUND_ALLOW": CALLEE}
            if carrier == "twilio":
                env |= twilio_settings(emulator, "openai")
            else:
                env |= telnyx_env(emulator, "openai")
                env["TELNYX_CONNECTION_ID"] = emulator.connection_id
            async with (
                running_app(tmp_path, env, agents=agents or agent_book()) as (base, _s, _a),
                httpx.AsyncClient(base_url=base, headers=AUTH) as http,
            ):
                if carrier == "telnyx":  # the connection's webhook URL, set in the portal
                    emulator.webhook_url = f"{base}/telnyx/webhook"
                body = {
                    "carrier": carrier,
                    "to": CALLEE,
                    "from": "+15550100000",
                    "machine_detection": detection,
                }
                placed = await http.post("/v1/calls", json=body)
                assert placed.status_code == 201, placed.text
                if carrier == "twilio":
                    (report,) = await emulator.wait_calls(timeout_s=40 * UNIT)
                    heard = read_audio_file(heard_path, 8000)
                else:
                    (call,) = emulator.calls.values()
                    report = await call.wait(40 * UNIT)
                    heard = report.heard_pcm
                    assert report.heard_rate == 8000
                assert await _a.state.switchboard.calls.wait_idle(10 * UNIT)
                out["metrics"] = (await http.get("/metrics")).text
            out.update(report=report, heard=samples(heard), oai=oai)
            yield out


def _wav(pcm: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(pcm)
    return buf.getvalue()


def onset_ms(heard: np.ndarray, threshold: int = 300) -> float:
    """When the callee first heard anything (ms from the media's start)."""
    loud = np.flatnonzero(np.abs(heard.astype(np.int32)) > threshold)
    return float(loud[0]) / 8 if loud.size else float("inf")


def said(detail: CallDetail) -> list[tuple[str, str]]:
    return [(t.role, t.text) for t in detail.transcript]


@pytest.mark.parametrize("carrier", ["twilio", "telnyx"])
async def test_the_message_is_left_after_the_beep_and_the_call_ends_as_voicemail(
    tmp_path: Path, carrier: str
) -> None:
    machine = AnsweringMachine()
    detection = {"policy": "leave_message", "message": MESSAGE}
    async with outbound(tmp_path, carrier, machine, detection) as out:
        pass
    assert out["report"].violations == [] and out["oai"].violations == []
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "voicemail"
    assert detail.record.extra.get("outcome") == "voicemail"
    lines = said(detail)
    assert ("agent", MESSAGE) in lines and ("agent", GREETING) not in lines
    heard = out["heard"]
    start = onset_ms(heard)
    # Nothing over the machine's greeting; the message begins once the beep has played.
    assert machine.beep_end_ms <= start <= machine.beep_end_ms + 2500 * UNIT, start
    message = samples(speech_like_pcm16(MESSAGE, 8000, ms_per_char=30.0))
    at = int(start * 8)
    window = heard[at : at + len(message) // 2].astype(np.float64)
    ref = message[: len(window)].astype(np.float64)
    score = float(np.max(np.correlate(window, ref[: len(ref) // 2], "valid")))
    norm = float(np.sqrt(np.dot(ref[: len(ref) // 2], ref[: len(ref) // 2])))
    assert score / (norm * norm) > 0.5  # the message's audio, not something else
    kinds = [e.kind for e in detail.timeline]
    assert "amd.verdict" in kinds and "amd.outcome" in kinds
    line = f'switchboard_outbound_outcomes_total{{carrier="{carrier}",outcome="voicemail"}} 1.0'
    assert line in out["metrics"]


@pytest.mark.parametrize("carrier", ["twilio", "telnyx"])
async def test_a_person_gets_the_agents_greeting(tmp_path: Path, carrier: str) -> None:
    detection = {"policy": "leave_message", "message": MESSAGE}
    async with outbound(tmp_path, carrier, None, detection) as out:
        pass
    detail = await read_only_call(tmp_path)
    assert detail.record.extra.get("outcome") == "answered"
    lines = said(detail)
    assert ("agent", GREETING) in lines and ("agent", MESSAGE) not in lines
    assert onset_ms(out["heard"]) >= 1000  # the greeting waited for the verdict
    line = f'switchboard_outbound_outcomes_total{{carrier="{carrier}",outcome="answered"}} 1.0'
    assert line in out["metrics"]


async def test_hangup_policy_says_nothing_to_a_machine(tmp_path: Path) -> None:
    async with outbound(tmp_path, "twilio", AnsweringMachine(), {"policy": "hangup"}) as out:
        pass
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "voicemail"
    assert [line for line in said(detail) if line[0] == "agent"] == []
    assert onset_ms(out["heard"]) == float("inf")  # the machine recorded nothing of ours
    assert out["report"].outcome == "hangup by REST"


async def test_leave_message_needs_a_message(tmp_path: Path) -> None:
    async with (
        TwilioEmulator() as twilio,
        running_app(tmp_path, twilio_settings(twilio, "openai")) as (base, _s, _a),
        httpx.AsyncClient(base_url=base, headers=AUTH) as http,
    ):
        body = {
            "carrier": "twilio",
            "to": CALLEE,
            "from": "+15550100000",
            "machine_detection": {"policy": "leave_message"},
        }
        refused = await http.post("/v1/calls", json=body)
    assert refused.status_code == 422
    assert "message" in refused.text


IVR = [
    {
        "caller": "press one for sales",
        "tool": {"name": "send_digits", "arguments": {"digits": "1w2"}},
        "say": "Thank you.",
    }
]


async def test_the_agent_presses_keys_on_a_telnyx_ivr(tmp_path: Path) -> None:
    book = agent_book(tools=["end_call", "send_digits"])
    pcm = caller_pcm("press one for sales", gap_ms=5000)
    async with outbound(
        tmp_path, "telnyx", None, None, script=IVR, callee_pcm=pcm, agents=book
    ) as out:
        pass
    report = out["report"]
    sent_bodies = [
        body
        for cmd, body in zip(report.commands, report.command_bodies, strict=False)
        if cmd == "send_dtmf"
    ]
    assert [b["digits"] for b in sent_bodies] == ["1w2"]  # what the IVR got, through Telnyx
    detail = await read_only_call(tmp_path)
    (sent,) = detail.tool_calls
    assert sent.name == "send_digits" and sent.ok, sent
    assert ("agent", "Thank you.") in said(detail)
    assert [e.data["digits"] for e in detail.timeline if e.kind == "keypad.sent"] == [3]


IVR_TWICE: list[dict[str, Any]] = [
    *IVR,
    {"caller": "this is sales how can I help", "say": "I would like a brochure please."},
]


async def test_the_agent_presses_keys_on_a_twilio_ivr_and_the_call_goes_on(
    tmp_path: Path,
) -> None:
    """Twilio plays digits by redirecting the call (its media stream stops): the session goes
    on with the stream the redirect's webhook opens, with audio both ways."""
    book = agent_book(tools=["end_call", "send_digits"])
    pcm = caller_pcm("press one for sales", "this is sales how can I help", gap_ms=[6000, 6000])
    async with outbound(
        tmp_path, "twilio", None, None, script=IVR_TWICE, callee_pcm=pcm, agents=book
    ) as out:
        pass
    report = out["report"]
    assert report.violations == []
    assert report.digits_played == "1w2"  # what the IVR got, through Twilio's <Play digits>
    detail = await read_only_call(tmp_path)
    why = (report.stream_starts, report.outcome, [(e.kind, e.data) for e in detail.timeline])
    assert len(report.stream_starts) == 2, why  # the redirect stopped the stream; a new one came
    assert report.outcome == "caller hung up"  # on the second stream, at the call's end
    # the callee heard the agent on the new stream ("Thank you.", then its answer)
    assert len(report.first_sounds) == 2 and report.first_sounds[1] > report.stream_starts[1]
    detail = await read_only_call(tmp_path)
    (sent,) = detail.tool_calls
    assert sent.name == "send_digits" and sent.ok, sent
    lines = said(detail)
    assert ("agent", "Thank you.") in lines
    # the callee's words on the new stream reached the agent, which answered them
    assert ("agent", "I would like a brochure please.") in lines
    assert detail.record.end_reason == "caller_hangup"
    (resumed,) = [e.data for e in detail.timeline if e.kind == "media.resumed"]
    print(f"stream gap around the digits: {resumed['gap_ms']} ms")
    assert resumed["streams"] == 2 and resumed["gap_ms"] < 5000, resumed
    assert [e.data["digits"] for e in detail.timeline if e.kind == "keypad.sent"] == [3]
