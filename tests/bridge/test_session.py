"""One call's runner, through its public surface: ``CallSession.run`` on a carrier socket in
memory (our ``MediaSocket``, the test playing Twilio) and a real OpenAI Realtime provider
connected to the emulator on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.bridge.carrier import MemoryCarrier
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm
from tests.waiting import eventually

from switchboard.agents import Agent
from switchboard.audio import pcm16_to_ulaw
from switchboard.bridge.options import BridgeOptions
from switchboard.bridge.session import CallSession
from switchboard.bridge.sink import MemorySink
from switchboard.config import load_settings
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.errors import TelephonyError
from switchboard.media import AudioSpec
from switchboard.providers.registry import ProviderRegistry
from switchboard.telephony.twilio.media import TWILIO_AUDIO, TwilioMediaCodec
from switchboard.tools import ToolContext

pytestmark = pytest.mark.anyio
KEY = "sk-session-test"


@dataclass
class RecordingControl:
    """The carrier's REST operations for one call, recorded (``fail``: the carrier refuses)."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    fail: bool = False

    async def hang_up(self) -> None:
        self.calls.append(("hang_up",))

    async def transfer(self, destination: str) -> None:
        self.calls.append(("transfer", destination))
        if self.fail:
            raise TelephonyError("the carrier refused the transfer", status=400)

    async def send_dtmf(self, digits: str) -> None:
        self.calls.append(("send_dtmf", digits))


@dataclass
class Call:
    """A running session and what the test sees of it."""

    session: CallSession
    carrier: MemoryCarrier
    sink: MemorySink
    control: RecordingControl
    oai: OpenAIRealtimeEmulator
    task: asyncio.Task[str]

    async def ended(self) -> str:
        return await asyncio.wait_for(self.task, 20 * UNIT)

    async def said(self, role: str, text: str) -> None:
        """Wait until ``text`` is in the transcript (an agent line once it has played)."""
        await eventually(
            lambda: (role, text) in [(r, t) for r, t, _, _ in self.sink.transcripts],
            limit_s=15,
            what=f"{role} saying {text!r}",
        )


def agent(**fields: Any) -> Agent:
    return Agent.model_validate(
        {"name": "desk", "system_prompt": "You are a test agent.", "greeting": None, **fields}
    )


@asynccontextmanager
async def bridged(
    script: list[dict[str, Any]],
    *,
    desk: Agent | None = None,
    key: str = KEY,
    control: RecordingControl | None = None,
    ms_per_char: float = 30.0,
    **session_options: Any,
) -> AsyncIterator[Call]:
    """A session bridging a memory carrier and an OpenAI provider on the emulator."""
    desk = desk or agent()
    async with OpenAIRealtimeEmulator(script=script, api_key=KEY, ms_per_char=ms_per_char) as oai:
        settings = load_settings(OPENAI_API_KEY=key, OPENAI_BASE_URL=oai.base_url)
        tools = desk.tool_registry()
        config = desk.session_config(TWILIO_AUDIO, tools.schemas())
        provider = ProviderRegistry(settings).create_provider("openai", config)
        carrier, codec, sink = MemoryCarrier(), TwilioMediaCodec(), MemorySink()
        control = control or RecordingControl()
        extras = {"directory": {k.lower(): v for k, v in desk.directory.items()}}
        session = CallSession(
            call_id="call-1",
            codec=codec,
            socket=carrier,
            started=carrier.start(codec),
            provider=provider,
            tools=tools,
            tool_context=ToolContext(call_id="call-1", extras=extras),
            carrier_control=control,
            sink=sink,
            dial_plan=desk.dial_plan,
            connect_timeout_s=5 * UNIT,
            **session_options,
        )
        task = asyncio.get_running_loop().create_task(session.run())
        call = Call(session, carrier, sink, control, oai, task)
        try:
            yield call
        finally:
            if not task.done():
                session.end("test_over")
                await asyncio.wait_for(task, 10 * UNIT)
        assert oai.violations == []


def caller_says(*utterances: str) -> bytes:
    return pcm16_to_ulaw(caller_pcm(*utterances, gap_ms=1200, lead_ms=200))


def kinds(sink: MemorySink) -> list[str]:
    return [kind for kind, _, _ in sink.timelines]


async def test_a_turn_is_bridged_until_the_caller_hangs_up() -> None:
    script = [{"caller": "what are your hours", "say": "We are open nine to five."}]
    async with bridged(script, desk=agent(greeting="Hello, thanks for calling.")) as call:
        await call.said("agent", "Hello, thanks for calling.")
        call.carrier.say(caller_says("what are your hours"))
        await call.said("agent", "We are open nine to five.")
        call.carrier.hang_up()
        assert await call.ended() == "caller_hangup"
    said = [(role, text) for role, text, _, _ in call.sink.transcripts]
    assert said == [
        ("agent", "Hello, thanks for calling."),
        ("caller", "what are your hours"),
        ("agent", "We are open nine to five."),
    ]
    assert len(call.carrier.heard()) > 8000  # more than a second of agent audio
    assert call.carrier.marks() and call.sink.latencies[0][0] == 1
    assert kinds(call.sink)[0] == "call.started" and kinds(call.sink)[-1] == "call.ended"
    assert call.carrier.closed == (1000, "caller_hangup")
    assert call.control.calls == []  # the caller hung up: nothing to tell the carrier


async def test_a_socket_that_goes_away_is_a_caller_hang_up() -> None:
    async with bridged([], desk=agent(greeting="Hello, thanks for calling.")) as call:
        await eventually(lambda: call.carrier.heard(), what="agent audio")
        call.carrier.go_away()
        assert await call.ended() == "caller_hangup"
        sent = len(call.carrier.sent)
    assert len(call.carrier.sent) == sent  # nothing more was sent to a socket that is gone
    assert call.control.calls == []


async def test_dtmf_goes_on_the_timeline() -> None:
    async with bridged([]) as call:
        call.carrier.dtmf("5")
        await eventually(lambda: "caller.dtmf" in kinds(call.sink), what="the digit recorded")
        call.carrier.hang_up()
        assert await call.ended() == "caller_hangup"
    (digit,) = [data for kind, _, data in call.sink.timelines if kind == "caller.dtmf"]
    assert digit == {"digit": "5", "source": "media"}


async def test_caller_speech_over_the_agent_barges_in() -> None:
    greeting = "Hello and welcome, this is a long greeting that takes several seconds to play."
    async with bridged([], desk=agent(greeting=greeting), ms_per_char=60.0) as call:
        await eventually(lambda: len(call.carrier.heard()) > 1600, what="the greeting playing")
        # speech only: the caller is still talking when the bridge acts on it
        call.carrier.say(pcm16_to_ulaw(speech_like_pcm16("stop talking please", 8000)))
        await eventually(lambda: "clear" in call.carrier.events(), what="the carrier cleared")
        call.carrier.hang_up()
        assert await call.ended() == "caller_hangup"
        truncated = [e for e in call.oai.received if e["type"] == "conversation.item.truncate"]
    assert call.session.core.barge_ins >= 1
    assert truncated, "the provider was told how much of the greeting was heard"
    # the greeting's line is cut to what was heard (text of the cancelled reply still in
    # flight may follow it)
    line = next(t for t in call.sink.transcripts if t[0] == "agent")
    assert line[3] is True and greeting.startswith(line[1]) and len(line[1]) < len(greeting)


async def test_end_call_hangs_up_through_the_carrier_once_the_goodbye_played() -> None:
    script = [{"caller": "bye", "tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"}]
    async with bridged(script, desk=agent(tools=["end_call"])) as call:
        call.carrier.say(caller_says("bye"))
        assert await call.ended() == "agent_hangup"
    assert ("agent", "Goodbye!", False) in [(r, t, i) for r, t, _, i in call.sink.transcripts]
    assert call.control.calls == [("hang_up",)]
    assert [r.name for r in call.sink.tools] == ["end_call"]
    assert call.carrier.closed == (1000, "agent_hangup")


@pytest.mark.parametrize("refused", [False, True], ids=["transferred", "carrier refuses"])
async def test_transfer_call_dials_the_directory_destination(refused: bool) -> None:
    tool = {"name": "transfer_call", "arguments": {"destination": "billing"}}
    script = [{"caller": "billing please", "tool": tool, "say": "Transferring you now."}]
    desk = agent(tools=["transfer_call"], directory={"billing": "+15550100201"})
    async with bridged(script, desk=desk, control=RecordingControl(fail=refused)) as call:
        call.carrier.say(caller_says("billing please"))
        assert await call.ended() == "transferred"
    assert call.control.calls == [("transfer", "+15550100201")]
    timeline = {kind: data for kind, _, data in call.sink.timelines}
    assert timeline["call.transferred"] == {"to": "+15550100201"}
    assert ("call.transfer_failed" in timeline) is refused


async def test_a_refused_transfer_destination_goes_back_to_the_model() -> None:
    tool = {"name": "transfer_call", "arguments": {"destination": "+19005550100"}}
    script = [{"caller": "put me through", "tool": tool, "say": "I cannot transfer you there."}]
    desk = agent(tools=["transfer_call"], directory={"billing": "+15550100201"})
    async with bridged(script, desk=desk) as call:
        call.carrier.say(caller_says("put me through"))
        await call.said("agent", "I cannot transfer you there.")
        call.carrier.hang_up()
        assert await call.ended() == "caller_hangup"
    assert call.control.calls == []
    (result,) = call.sink.tools
    assert not result.ok and "is not allowed" in str(result.error)
    assert "call.transfer_refused" in kinds(call.sink)


async def test_a_provider_that_cannot_connect_ends_the_call_with_an_apology() -> None:
    apology = "Sorry, we are having trouble."
    spoken = pcm16_to_ulaw(speech_like_pcm16(apology, 8000, ms_per_char=20.0))
    asked: list[tuple[str, AudioSpec]] = []

    async def apology_audio(text: str, spec: AudioSpec) -> bytes:
        asked.append((text, spec))
        return spoken

    async with bridged([], key="sk-wrong", apology=apology, apology_audio=apology_audio) as call:
        assert await call.ended() == "provider_failed"
    assert asked == [(apology, TWILIO_AUDIO)]
    events = call.carrier.events()
    assert events[0] == "clear" and events[-1] == "mark" and call.carrier.marks() == ["apology"]
    assert call.carrier.heard().startswith(spoken)
    assert [(r, t) for r, t, _, _ in call.sink.transcripts] == [("agent", apology)]
    assert call.control.calls == [("hang_up",)]
    assert call.carrier.closed == (1000, "provider_failed")
    assert call.oai.connection_count == 0  # refused at the upgrade (401)


async def test_the_provider_closing_hangs_up_through_the_carrier() -> None:
    async with bridged([], desk=agent(greeting="Hi.")) as call:
        await call.said("agent", "Hi.")
        await call.session.provider.disconnect()
        assert await call.ended() == "provider_closed"
    assert call.control.calls == [("hang_up",)]


async def test_the_time_limit_says_goodbye_and_hangs_up() -> None:
    options = BridgeOptions(max_call_ms=300, goodbye_text="Time is up, goodbye.")
    async with bridged([], options=options) as call:
        assert await call.ended() == "max_duration"
    assert "call.max_duration" in kinds(call.sink)
    assert call.control.calls == [("hang_up",)]
    said = [e for e in call.oai.received if e["type"] == "response.create"]
    assert said, "the provider was asked to say the goodbye"
