"""Setting one call's bridge up from its agent: caller audio format and bridge options (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from switchboard.agents import Agent
from switchboard.bridge.active import bridge_options, caller_audio
from switchboard.bridge.core import BridgeOptions
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import TelephonyType


def _agent(**fields: object) -> Agent:
    return Agent.model_validate({"name": "desk", "system_prompt": "x", **fields})


ULAW = AudioSpec(AudioFormat.ULAW, 8000)
ALAW = AudioSpec(AudioFormat.ALAW, 8000)
WIDE = AudioSpec(AudioFormat.PCM16, 16000)


@pytest.mark.parametrize(
    ("carrier", "provider", "codec", "spec"),
    [
        (TelephonyType.TWILIO, "openai", None, ULAW),
        (TelephonyType.TWILIO, "gemini", None, ULAW),  # Twilio is always μ-law
        (TelephonyType.TWILIO, "openai", "l16", ULAW),
        (TelephonyType.TELNYX, "openai", None, ULAW),
        (TelephonyType.TELNYX, "gemini", None, WIDE),  # Gemini's 16 kHz, no resampling
        (TelephonyType.TELNYX, "gemini", "pcmu", ULAW),  # the agent's choice wins
        (TelephonyType.TELNYX, "openai", "pcma", ALAW),
        (TelephonyType.TELNYX, "openai", "l16", WIDE),
        (TelephonyType.TELNYX, "deepgram", "opus", WIDE),  # decoded to PCM16 by the codec
        (TelephonyType.TELNYX, "local", "g722", WIDE),
    ],
)
def test_caller_audio(
    carrier: TelephonyType, provider: str, codec: str | None, spec: AudioSpec
) -> None:
    assert caller_audio(carrier, provider, codec) == spec


def test_options_follow_the_agent() -> None:
    agent = _agent(
        barge_in=False,
        reprompt="Hello?",
        goodbye="Bye now.",
        limits={"max_call_seconds": 600, "silence_timeout_s": 5, "silence_hangup_s": 20},
    )
    options = bridge_options(agent, None)
    assert options == BridgeOptions(
        barge_in=False,
        silence_timeout_ms=5000,
        silence_hangup_ms=20000,
        max_call_ms=600_000,
        reprompt_text="Hello?",
        goodbye_text="Bye now.",
    )


def test_the_shorter_of_the_agent_and_carrier_limits_ends_the_call() -> None:
    assert bridge_options(_agent(limits={"max_call_seconds": 600}), 300).max_call_ms == 300_000
    assert bridge_options(_agent(limits={"max_call_seconds": 600}), 14400).max_call_ms == 600_000
    no_limit = _agent(limits={"max_call_seconds": None})
    assert bridge_options(no_limit, 14400).max_call_ms == 14_400_000
    assert bridge_options(no_limit, None).max_call_ms is None


def test_no_silence_limits_and_no_reprompt_text() -> None:
    agent = _agent(reprompt=None, limits={"silence_timeout_s": None, "silence_hangup_s": None})
    options = bridge_options(agent, None)
    assert options.silence_timeout_ms is None and options.silence_hangup_ms is None
    assert options.reprompt_text == "Are you still there?"


def test_overrides_adjust_what_the_agent_gave() -> None:
    agent = _agent(limits={"max_call_seconds": 600})
    options = bridge_options(agent, None, lambda o: replace(o, control_grace_ms=500))
    assert options.control_grace_ms == 500
    assert options.max_call_ms == 600_000  # the rest as the agent gave it
