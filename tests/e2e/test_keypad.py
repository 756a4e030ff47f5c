"""Keypad (DTMF) end to end over loopback, on Twilio and on Telnyx, with the OpenAI emulator.

The emulated caller presses keys on its media stream (and, on Telnyx, the network also posts
``call.dtmf.received``): the digits reach the model as a caller input, which changes what the
agent says; ``collect_digits`` with ``redact`` keeps a PIN out of the transcript, the logs,
the timeline, the tool record and everything the provider got; a ``dtmf_menu`` key transfers
with no model involved.
"""

from __future__ import annotations

import io
import json
import logging
import wave
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from switchboard.agents import AgentBook
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.store import CallDetail
from tests.conftest import UNIT
from tests.e2e.harness import (
    agent_book,
    caller_pcm,
    openai_env,
    place_twilio_call,
    read_only_call,
    running_app,
    telnyx_env,
    twilio_env,
)
from tests.e2e.test_pairs import provider_env

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ANSWERS: list[dict[str, Any]] = [
    {"text": "pressed 4 2", "say": "Order forty two has shipped."},
    {"text": "pressed 7", "say": "There is no order seven."},
]
PIN = "739164"


@asynccontextmanager
async def keypad_call(
    tmp_path: Path,
    carrier: str,
    script: list[dict[str, Any]],
    *,
    pcm: bytes,
    dtmf: str,
    agents: AgentBook | None = None,
) -> AsyncIterator[tuple[OpenAIRealtimeEmulator, dict[str, Any]]]:
    """One call through ``carrier`` whose caller says ``pcm`` then presses ``dtmf``; yields
    the OpenAI emulator and a dict holding the carrier's report (``"report"``)."""
    out: dict[str, Any] = {}
    async with OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai:
        if carrier == "twilio":
            async with TwilioEmulator() as twilio:
                env = openai_env(oai) | twilio_env(twilio, "openai")
                async with running_app(tmp_path, env, agents=agents or agent_book()) as app:
                    base = app[0]
                    out["report"] = await place_twilio_call(
                        twilio, base, pcm, dtmf=dtmf, linger_s=6.0
                    )
                    out["rest"] = twilio.requests
        else:
            async with TelnyxEmulator(realtime=True, tail_ms=6000) as telnyx:
                env = openai_env(oai) | telnyx_env(telnyx, "openai")
                async with running_app(tmp_path, env, agents=agents or agent_book()) as app:
                    base = app[0]
                    call = await telnyx.place_inbound_call(
                        to="+15550100000",
                        from_="+15550111111",
                        audio=_wav(pcm),
                        webhook_url=f"{base}/telnyx/webhook",
                        dtmf=dtmf,
                    )
                    out["report"] = await call.wait(40 * UNIT)
        yield oai, out


def _wav(pcm: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(pcm)
    return buf.getvalue()


def said(detail: CallDetail) -> list[tuple[str, str]]:
    return [(t.role, t.text) for t in detail.transcript]


@pytest.mark.parametrize("carrier", ["twilio", "telnyx"])
@pytest.mark.parametrize(
    ("digits", "answer", "other"),
    [
        ("42", "Order forty two has shipped.", "There is no order seven."),
        ("7", "There is no order seven.", "Order forty two has shipped."),
    ],
)
async def test_digits_pressed_change_what_the_agent_says(
    tmp_path: Path, carrier: str, digits: str, answer: str, other: str
) -> None:
    pcm = bytes(8000 * 2 * 3)  # three seconds of silence: the greeting plays, then the keys
    async with keypad_call(tmp_path, carrier, ANSWERS, pcm=pcm, dtmf=digits) as (oai, out):
        pass
    assert out["report"].violations == [] and oai.violations == []
    texts = [
        part["text"]
        for e in oai.received
        if e.get("type") == "conversation.item.create" and e["item"].get("role") == "user"
        for part in e["item"]["content"]
    ]
    pressed = "caller pressed " + " ".join(digits)
    assert texts == [pressed]  # once, though Telnyx reports each key twice (media + webhook)
    lines = said(await read_only_call(tmp_path))
    assert ("caller", f"(pressed {' '.join(digits)})") in lines
    assert ("agent", answer) in lines
    assert ("agent", other) not in lines


@pytest.mark.parametrize("carrier", ["twilio", "telnyx"])
async def test_collect_digits_with_redact_keeps_the_pin_out_of_everything(
    tmp_path: Path, carrier: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    args = {
        "prompt": "Please key in your PIN, then press pound.",
        "max_digits": 8,
        "finish_on_key": "#",
        "timeout_s": 8,
        "redact": True,
    }
    script = [
        {
            "caller": "I want to check my account",
            "tool": {"name": "collect_digits", "arguments": args},
            "say": "Thank you, your PIN is verified.",
        }
    ]
    book = agent_book(tools=["end_call", "collect_digits"])
    pcm = caller_pcm("I want to check my account", gap_ms=3000)
    async with keypad_call(tmp_path, carrier, script, pcm=pcm, dtmf=PIN + "#", agents=book) as (
        oai,
        out,
    ):
        pass
    assert out["report"].violations == [] and oai.violations == []
    detail = await read_only_call(tmp_path)
    lines = said(detail)
    assert ("agent", "Please key in your PIN, then press pound.") in lines
    assert ("caller", "(keyed ****)") in lines
    assert ("agent", "Thank you, your PIN is verified.") in lines
    (tool_call,) = detail.tool_calls
    assert tool_call.ok and tool_call.result == {
        "result": {"digits": "****", "redacted": True, "received": True, "ended_by": "finish_key"}
    }
    kinds = [(e.kind, {k: v for k, v in e.data.items() if k != "t_ms"}) for e in detail.timeline]
    assert ("keypad.redaction", {"state": "started"}) in kinds
    assert ("keypad.redaction", {"state": "ended"}) in kinds
    dtmf = [d["digit"] for k, d in kinds if k == "caller.dtmf"]
    assert dtmf and set(dtmf) == {"*"}
    everything = [
        json.dumps(lines),
        json.dumps([(e.kind, e.data) for e in detail.timeline], default=str),
        json.dumps([t.result for t in detail.tool_calls], default=str),
        json.dumps(oai.received),
        "\n".join(  # the gateway's own logs (the emulated caller's client logs its frames)
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("switchboard") and not r.name.startswith("switchboard.emulators")
        ),
    ]
    for where in everything:
        assert PIN not in where and " ".join(PIN) not in where and ", ".join(PIN) not in where


async def test_dtmf_menu_transfers_with_no_model(tmp_path: Path) -> None:
    book = agent_book(
        directory={"billing": "+15550199999"},
        dtmf_menu={"1": {"transfer": "billing"}},
    )
    pcm = bytes(8000 * 2 * 3)
    async with keypad_call(tmp_path, "twilio", ANSWERS, pcm=pcm, dtmf="1", agents=book) as (
        oai,
        out,
    ):
        pass
    assert out["report"].dialed == ["+15550199999"]
    assert not [e for e in oai.received if e.get("type") == "conversation.item.create"]
    detail = await read_only_call(tmp_path)
    assert detail.record.end_reason == "transferred"
    assert [e.data["digit"] for e in detail.timeline if e.kind == "keypad.menu"] == ["1"]


@pytest.mark.parametrize("provider", ["gemini", "deepgram"])
async def test_digits_reach_gemini_live_and_the_pipeline(tmp_path: Path, provider: str) -> None:
    """Gemini Live gets a clientContent turn, the Deepgram pipeline a caller turn its LLM
    (the Gemini REST emulator) answers."""
    pcm = bytes(8000 * 2 * 3)
    async with AsyncExitStack() as stack, provider_env(provider, stack, ANSWERS) as providers:
        twilio = await stack.enter_async_context(TwilioEmulator())
        env = providers.env | twilio_env(twilio, provider)
        async with running_app(tmp_path, env) as (base, _settings, _app):
            report = await place_twilio_call(twilio, base, pcm, dtmf="42", linger_s=6.0)
    assert report.violations == []
    lines = said(await read_only_call(tmp_path))
    assert ("caller", "(pressed 4 2)") in lines
    agent = [text.lower() for role, text in lines if role == "agent"]
    assert any("order forty two has shipped" in text for text in agent), lines
