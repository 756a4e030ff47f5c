"""An operator at a live call through the public API, without a browser: Listen, Whisper,
Take over (the operator's microphone over the websocket) and Hand back, with the Twilio
emulator as the caller and the OpenAI Realtime emulator as the agent."""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.e2e.harness import (
    API_TOKEN,
    caller_pcm,
    openai_env,
    read_only_call,
    running_app,
    twilio_env,
)
from tests.operator_audio import frame_kinds, read_wav_pcm, rms, tone_pcm16
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT = [
    {"caller": "hello there", "say": "Hi! How can I help you today?"},
    {"say": "I am back with you now."},
]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
DOCS = {"SWITCHBOARD_API_DOCS": "true"}  # /openapi.json served


def ws_url(base: str, path: str) -> str:
    return f"ws{base.removeprefix('http')}{path}?token={API_TOKEN}"


def live_call(app: Any) -> str:
    calls = app.state.switchboard.calls.calls
    return next(iter(calls)) if calls and next(iter(calls.values())).session else ""


def said(app: Any, call_id: str) -> list[str]:
    return [
        e.data["text"]
        for e in app.state.switchboard.gateway.live.recent(call_id)
        if e.type == "transcript"
    ]


async def test_listen_whisper_take_over_and_hand_back(tmp_path: Path) -> None:
    heard = tmp_path / "heard.wav"
    audio = pcm16_to_ulaw(caller_pcm("hello there"))
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=60.0, max_call_s=90.0) as twilio,
        running_app(tmp_path, openai_env(oai) | twilio_env(twilio, "openai") | DOCS) as (
            base,
            _s,
            app,
        ),
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10.0) as http,
    ):
        schema = (await http.get("/openapi.json")).json()
        for action in ("say", "whisper", "takeover", "handback", "transfer", "hangup"):
            assert "post" in schema["paths"][f"/v1/calls/{{call_id}}/{action}"]
        assert {"/v1/calls/{call_id}/listen", "/v1/calls/{call_id}/operator"} <= set(
            schema["x-websockets"]
        )
        twilio.dial_in(f"{base}/twilio/voice", audio=audio, out=heard)
        call_id = await eventually(lambda: live_call(app), limit_s=10, what="a bridged call")

        # Listen: both sides mixed, PCM16 16 kHz; the greeting makes it non-silent.
        async with connect(ws_url(base, f"/v1/calls/{call_id}/listen")) as listen:
            started = json.loads(await listen.recv())
            assert started == {"type": "started", "format": "pcm16", "sample_rate": 16000}
            loudest = 0.0
            while loudest < 500:
                frame = await asyncio.wait_for(listen.recv(), 5 * UNIT)
                assert isinstance(frame, bytes) and 0 < len(frame) <= 1280  # ~20 ms at 16 kHz
                loudest = max(loudest, rms(frame))
        with pytest.raises(InvalidStatus):  # the token is required
            await connect(f"ws{base.removeprefix('http')}/v1/calls/{call_id}/listen")

        await eventually(lambda: "How can I help" in " ".join(said(app, call_id)), limit_s=20)

        # Whisper: the agent is told; the caller hears nothing of it.
        r = await http.post(f"/v1/calls/{call_id}/whisper", json={"text": "Offer a discount."})
        assert r.status_code == 200, r.text
        notes = [
            e["item"]
            for e in oai.received
            if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
        ]
        assert notes[-1]["content"][0]["text"] == "Offer a discount."

        # Take over: the operator's tone reaches the caller; the agent is off the line.
        r = await http.post(f"/v1/calls/{call_id}/takeover")
        assert r.status_code == 200, r.text
        assert (await http.post(f"/v1/calls/{call_id}/takeover")).status_code == 409
        assert (await http.post(f"/v1/calls/{call_id}/say", json={"text": "x"})).status_code == 409
        appended = sum(1 for e in oai.received if e["type"] == "input_audio_buffer.append")
        tone = tone_pcm16(1.5)
        async with (
            connect(ws_url(base, f"/v1/calls/{call_id}/operator")) as mic,
            connect(ws_url(base, f"/v1/calls/{call_id}/listen")) as listen,
        ):
            assert json.loads(await mic.recv())["type"] == "started"
            assert json.loads(await listen.recv())["type"] == "started"
            heard_at: list[float] = []

            async def hear_the_tone() -> None:
                while not heard_at:
                    frame = await listen.recv()
                    if isinstance(frame, bytes) and "t" in frame_kinds(frame, 16000):
                        heard_at.append(time.monotonic())

            hearing = asyncio.create_task(hear_the_tone())
            sent_at = time.monotonic()
            for i in range(0, len(tone), 640):
                await mic.send(tone[i : i + 640])
                await asyncio.sleep(0.02)
            await asyncio.wait_for(hearing, 5 * UNIT)
            # A listener hears the operator this long after the microphone's first frame left
            # (through the gateway, in the mix): well under the 500 ms allowed.
            behind_s = heard_at[0] - sent_at
            print(f"listen: the operator's first frame heard {behind_s * 1000:.0f} ms later")
            assert behind_s < 0.5 * UNIT
            caller_side = await asyncio.wait_for(mic.recv(), 5 * UNIT)  # the caller, alone
            assert isinstance(caller_side, bytes)
        after = sum(1 for e in oai.received if e["type"] == "input_audio_buffer.append")
        assert after - appended <= 5, "caller audio went to the agent while taken over"

        # Hand back: the agent is told what happened and answers again.
        r = await http.post(f"/v1/calls/{call_id}/handback")
        assert r.status_code == 200, r.text
        assert (await http.post(f"/v1/calls/{call_id}/handback")).status_code == 409
        await eventually(lambda: "I am back" in " ".join(said(app, call_id)), limit_s=20)
        items = [
            e for e in oai.received if e["type"] in ("conversation.item.create", "response.create")
        ]
        note = next(
            i for i, e in enumerate(items) if "operator" in json.dumps(e.get("item", {})).lower()
        )
        assert "spoke with the caller for" in items[note]["item"]["content"][0]["text"]
        assert items[note + 1]["type"] == "response.create"  # answered with that in context
        assert (await http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
        (report,) = await twilio.wait_calls(timeout_s=20 * UNIT)
    assert report.violations == []
    assert oai.violations == []

    # What the caller heard: the greeting and first answer, then the tone alone, then the agent.
    pcm, rate = read_wav_pcm(heard)
    kinds = frame_kinds(pcm, rate)
    first, last = kinds.index("t"), kinds.rindex("t")
    assert kinds.count("t") >= 50, "at least a second of the operator's tone was heard"
    assert "a" in kinds[:first], "the agent spoke before the take-over"
    assert kinds[first : last + 1].count("a") <= 3, kinds[first : last + 1]  # no AI audio
    assert kinds[last + 1 :].count("a") >= 25, "the agent answered after the hand-back"

    detail = await read_only_call(tmp_path)
    acts = [(t.kind, t.data.get("by"), t.data.get("via")) for t in detail.timeline]
    for kind in ("whisper", "take_over", "hand_back"):
        assert (f"operator.{kind}", "operator", "api") in acts, acts
    assert any(t.kind == "operator.context" for t in detail.timeline)
    token = hashlib.sha256(API_TOKEN.encode()).hexdigest()[:8]  # names the token, hides it
    assert all(
        t.data["token"] == token
        for t in detail.timeline
        if t.kind.startswith("operator.") and t.kind != "operator.context"
    )


LONG = "I can tell you all about our opening hours, our prices, and where to find us. " * 3


async def test_take_over_in_the_middle_of_a_reply_cuts_the_agent_off(tmp_path: Path) -> None:
    heard = tmp_path / "heard.wav"
    audio = pcm16_to_ulaw(caller_pcm("hello there"))
    script = [{"caller": "hello there", "say": LONG}]
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=60.0, max_call_s=90.0) as twilio,
        running_app(tmp_path, openai_env(oai) | twilio_env(twilio, "openai")) as (base, _s, app),
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10.0) as http,
    ):
        twilio.dial_in(f"{base}/twilio/voice", audio=audio, out=heard)
        call_id = await eventually(lambda: live_call(app), limit_s=10, what="a bridged call")
        hub = app.state.switchboard.gateway.live

        def answering() -> bool:
            return any(
                e.type == "timeline"
                and e.data["kind"] == "reply.first_audio"
                and e.data["data"]["reply"] == 2
                for e in hub.recent(call_id)
            )

        await eventually(answering, limit_s=20, what="the long answer playing")
        await asyncio.sleep(1.0)  # a second into a seven-second reply
        assert (await http.post(f"/v1/calls/{call_id}/takeover")).status_code == 200
        tone = tone_pcm16(1.0)
        async with connect(ws_url(base, f"/v1/calls/{call_id}/operator")) as mic:
            await mic.recv()
            for i in range(0, len(tone), 640):
                await mic.send(tone[i : i + 640])
                await asyncio.sleep(0.02)
        assert (await http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
        (report,) = await twilio.wait_calls(timeout_s=20 * UNIT)
    assert report.clears >= 1  # what the carrier held of the reply was dropped
    sent = [e["type"] for e in oai.received]
    assert "conversation.item.truncate" in sent  # the model knows what was heard
    detail = await read_only_call(tmp_path)
    cut = [t for t in detail.transcript if t.role == "agent" and t.interrupted]
    assert cut and len(cut[0].text) < len(LONG.strip()), cut  # cut to what was heard
    barge = [t.data for t in detail.timeline if t.kind == "barge_in"]
    assert barge and barge[0]["source"] == "operator"
    kinds = frame_kinds(*read_wav_pcm(heard))
    first = kinds.index("t")
    assert kinds[first:].count("a") <= 3, kinds[first:]  # no agent after the operator began


@pytest.mark.local
@pytest.mark.serial  # Whisper hears the operator's audio as it arrived: gaps under load garble it
async def test_hand_back_tells_the_agent_what_was_said_when_a_transcriber_is_configured(
    tmp_path: Path,
) -> None:
    from switchboard.media import AudioFormat
    from switchboard.providers.local import synth

    words = synth.caller_audio(
        "Your refund has been approved.", fmt=AudioFormat.PCM16, sample_rate=16000, line=False
    )
    env = {"SWITCHBOARD_OPERATOR_TRANSCRIBER": "local"}
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=60.0, max_call_s=90.0) as twilio,
        running_app(tmp_path, openai_env(oai) | twilio_env(twilio, "openai") | env) as (
            base,
            _s,
            app,
        ),
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60.0 * UNIT) as http,
    ):
        twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(caller_pcm("hello there")))
        call_id = await eventually(lambda: live_call(app), limit_s=10, what="a bridged call")
        assert (await http.post(f"/v1/calls/{call_id}/takeover")).status_code == 200
        async with connect(ws_url(base, f"/v1/calls/{call_id}/operator")) as mic:
            await mic.recv()
            for i in range(0, len(words), 640):
                await mic.send(words[i : i + 640])
                await asyncio.sleep(0.02)
        assert (await http.post(f"/v1/calls/{call_id}/handback")).status_code == 200
        assert (await http.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
        await twilio.wait_calls(timeout_s=20 * UNIT)
    note = next(
        e["item"]["content"][0]["text"]
        for e in oai.received
        if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
    )
    # Whisper's line, not an exact match: a CI run heard "Your reefon has been approved."
    # (local runs: the sentence as said); a missing or wrong line scores far lower
    said = note.split('the operator said "', 1)[-1].split('"', 1)[0]
    assert "the operator said" in note, note
    similarity = difflib.SequenceMatcher(None, said.lower(), "your refund has been approved.")
    assert similarity.ratio() > 0.8, note
