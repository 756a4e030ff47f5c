"""Thinking audio: what the caller hears while a slow tool runs, instead of dead air.

Once a tool has run ``after_ms`` (700 ms by default) with nothing playing, the caller hears
a soft sound — the agent's ``thinking_audio`` file, or :func:`thinking_sound` made locally —
looped until the first frame of the agent's reply goes out (or the reply ends with nothing
to say, the buffer is cleared, the call ends, or ``max_ms`` passed). The frames go straight
to the carrier, paced at most ``lead_ms`` ahead of playout, so the reply that stops them
starts at most that late; the bridge core's own pacing and marks are untouched.

:class:`ThinkingAudio` is driven by the session: :meth:`around` wraps each tool run,
:meth:`stop` is called with each reply frame. The timeline carries ``thinking.started`` and
``thinking.stopped`` (with the reason and the milliseconds played).
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import numpy as np

from switchboard.audio import Framer, convert
from switchboard.bridge.sink import CallSink
from switchboard.media import AudioChunk, AudioFormat, AudioSpec

__all__ = ["CALLER_TOOLS", "ThinkingAudio", "thinking_sound"]

#: Tools that are the caller's turn or the call's end, not the agent thinking: no sound.
CALLER_TOOLS = frozenset({"collect_digits", "end_call", "transfer_call"})

T = TypeVar("T")

#: The generated sound: a soft two-note chime (-30 dBFS) every 1.6 s.
_PERIOD_S = 1.6
_NOTES = ((0.0, 523.25), (0.22, 659.25))  # (start s, Hz): C5 then E5
_NOTE_S = 0.18
_AMPLITUDE = 0.03


def thinking_sound(spec: AudioSpec) -> bytes:
    """One loop of the generated thinking sound in ``spec`` (raw G.711 or PCM16)."""
    return _sound(spec.format, spec.sample_rate)


@functools.lru_cache(maxsize=16)
def _sound(fmt: AudioFormat, rate: int) -> bytes:
    t = np.arange(int(rate * _PERIOD_S)) / rate
    wave = np.zeros_like(t)
    for start, freq in _NOTES:
        local = t - start
        inside = (local >= 0) & (local < _NOTE_S)
        # A raised-cosine envelope: no clicks at the note's ends.
        envelope = np.where(inside, 0.5 - 0.5 * np.cos(2 * math.pi * local / _NOTE_S), 0.0)
        wave += envelope * np.sin(2 * math.pi * freq * local)
    pcm = (wave * _AMPLITUDE * 32767).astype("<i2").tobytes()
    return convert(AudioChunk(pcm, AudioFormat.PCM16, rate), fmt, rate).data


def _frames(spec: AudioSpec, audio: bytes | None) -> tuple[bytes, ...]:
    if audio:
        return _cut(spec, audio)
    return _default_frames(spec)


@functools.lru_cache(maxsize=16)
def _default_frames(spec: AudioSpec) -> tuple[bytes, ...]:
    # shared by every call in the format: 1.6 s of frames is ~16 kB of μ-law as 160-byte
    # objects, which every call used to hold whether or not a tool ever ran long
    return _cut(spec, thinking_sound(spec))


def _cut(spec: AudioSpec, audio: bytes) -> tuple[bytes, ...]:
    framer = Framer(spec)
    return (*framer.push(audio), *framer.flush())


class ThinkingAudio:
    """One call's thinking audio (see the module docstring).

    Args:
        spec: the carrier's audio format.
        send: sends one carrier frame to the caller.
        busy: whether agent audio is playing (the core's ``agent_speaking``); nothing starts
            over it.
        clock: the session's clock (ms).
        sink: the call's record (timeline).
        audio: the sound in ``spec`` (default :func:`thinking_sound`).
        after_ms: how long a tool runs before the sound starts.
        lead_ms: how far ahead of playout frames are sent.
        max_ms: the longest the sound plays at a stretch.
    """

    def __init__(
        self,
        *,
        spec: AudioSpec,
        send: Callable[[bytes], Awaitable[None]],
        busy: Callable[[float], bool],
        clock: Callable[[], float],
        sink: CallSink,
        audio: bytes | None = None,
        after_ms: float = 700.0,
        lead_ms: float = 60.0,
        max_ms: float = 60_000.0,
    ) -> None:
        self._spec, self._audio = spec, audio  # cut into frames only when the sound starts
        self._frame_ms = 20.0
        self._send, self._busy, self._clock, self._sink = send, busy, clock, sink
        self.after_ms, self.lead_ms, self.max_ms = after_ms, lead_ms, max_ms
        self._tools = 0
        self._task: asyncio.Task[None] | None = None
        self._playing = False
        self._sending = False
        self._answered = False  # a tool finished since the sound started
        self.frames_sent = 0
        self._episode_start = 0

    @property
    def playing(self) -> bool:
        return self._playing

    async def around(self, tool: Awaitable[T]) -> T:
        """Run ``tool``; if it takes longer than ``after_ms``, the sound starts."""
        self._tools += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._play())
        try:
            return await tool
        finally:
            self._tools -= 1
            self._answered = True

    def reply_done(self) -> None:
        """The provider finished a reply: one after a tool's result with no audio stops it."""
        if self._playing and self._tools == 0 and self._answered:
            self.stop("no_reply")

    def stop(self, reason: str = "reply") -> None:
        """Stop the sound (the first reply frame is going out, or ``reason``)."""
        task, self._task = self._task, None
        if task is None:
            return
        if not self._sending:  # a frame half sent is let finish; the loop then sees no task
            task.cancel()
        if self._playing:
            self._playing = False
            played = (self.frames_sent - self._episode_start) * self._frame_ms
            self._sink.timeline(
                "thinking.stopped", self._clock(), {"reason": reason, "played_ms": played}
            )

    async def _play(self) -> None:
        await asyncio.sleep(self.after_ms / 1000.0)
        if self._tools == 0 or self._busy(self._clock()):
            self._task = None  # the tool was quick, or the agent is talking
            return
        start = self._clock()
        self._playing, self._answered = True, False
        self._episode_start = self.frames_sent
        self._sink.timeline("thinking.started", start, {})
        frames, n = _frames(self._spec, self._audio), 0
        me = self._task
        while self._task is me:
            now = self._clock()
            if now - start >= self.max_ms:
                break
            while self._task is me and n * self._frame_ms < now - start + self.lead_ms:
                self._sending = True
                try:
                    await self._send(frames[n % len(frames)])
                finally:
                    self._sending = False
                n += 1
                self.frames_sent += 1
            await asyncio.sleep(self._frame_ms / 1000.0)
        if self._task is not me:
            return  # stopped
        self._task = None
        self._playing = False
        played = n * self._frame_ms
        self._sink.timeline(
            "thinking.stopped", self._clock(), {"reason": "max_duration", "played_ms": played}
        )
