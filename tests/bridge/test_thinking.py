"""The thinking sound's rules (``bridge/thinking.py``) on a real event loop, short timers."""

from __future__ import annotations

import asyncio

import pytest
from tests.waiting import eventually

from switchboard.bridge.sink import MemorySink
from switchboard.bridge.thinking import ThinkingAudio, thinking_sound
from switchboard.media import AudioFormat, AudioSpec

pytestmark = pytest.mark.anyio

SPEC = AudioSpec(AudioFormat.ULAW, 8000)


def player(sent: list[bytes], *, busy: bool = False) -> tuple[ThinkingAudio, MemorySink]:
    loop = asyncio.get_running_loop()
    sink = MemorySink()

    async def send(frame: bytes) -> None:
        sent.append(frame)

    audio = ThinkingAudio(
        spec=SPEC,
        send=send,
        busy=lambda _now: busy,
        clock=lambda: loop.time() * 1000.0,
        sink=sink,
        after_ms=50,
    )
    return audio, sink


def playing(audio: ThinkingAudio) -> bool:  # a call, so mypy does not narrow the property
    return audio.playing


def kinds(sink: MemorySink) -> list[str]:
    return [kind for kind, _, _ in sink.timelines]


async def test_a_quick_tool_plays_nothing() -> None:
    sent: list[bytes] = []
    audio, sink = player(sent)
    assert await audio.around(asyncio.sleep(0.01, "done")) == "done"
    await asyncio.sleep(0.1)
    assert sent == [] and kinds(sink) == []


async def test_a_slow_tool_plays_the_loop_until_the_reply() -> None:
    sent: list[bytes] = []
    audio, sink = player(sent)
    tool = asyncio.ensure_future(audio.around(asyncio.sleep(0.5)))
    await eventually(lambda: len(sent) >= 10, what="thinking frames")
    assert playing(audio) and sent[0] == thinking_sound(SPEC)[:160]
    audio.stop()  # the first reply frame
    count = len(sent)
    await tool
    await asyncio.sleep(0.05)
    assert len(sent) == count and not playing(audio)
    assert kinds(sink) == ["thinking.started", "thinking.stopped"]
    assert sink.timelines[-1][2]["reason"] == "reply"


async def test_nothing_starts_over_agent_audio_and_a_silent_reply_stops_it() -> None:
    sent: list[bytes] = []
    audio, _sink = player(sent, busy=True)
    await audio.around(asyncio.sleep(0.15))
    assert sent == []
    audio, sink = player(sent)
    await audio.around(asyncio.sleep(0.15))
    assert playing(audio)  # the tool answered; the model's reply has not come yet
    audio.reply_done()  # it ended with nothing to say
    assert not playing(audio) and sink.timelines[-1][2]["reason"] == "no_reply"
