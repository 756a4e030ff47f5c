"""An operator at a live call: listening in, taking the call over from the agent, handing it back.

Theory of operation
-------------------
Each :class:`~switchboard.bridge.session.CallSession` has one :class:`OperatorDesk`. The session
shows it every caller frame (``caller_audio``) and every frame sent to the caller
(``agent_audio``), and asks it whether the call is taken over.

Listen
    Listeners (``listen()``) get both sides mixed, PCM16 LE mono at :data:`LISTEN_RATE`. The
    caller's frames are the clock: the carrier sends one every 20 ms in real time, so each
    caller frame is mixed with as much of the outgoing audio as it lasts and goes out at once.
    Outgoing audio is sent up to ~200 ms ahead of playout (the core's pacing) and waits here
    until a caller frame takes it, at most :data:`MAX_AHEAD_MS` (older is dropped), so a
    listener hears the call well under half a second after the caller does. A barge-in
    (``clear``) drops the outgoing audio the caller will not hear either. Each listener has a
    bounded queue that drops its oldest frames: a slow browser never slows the call.

Partial transcripts
    ``screen`` sees every provider event first and passes the transcript so far of each side
    to ``on_partial`` (the live view), cleared once the line is final.

Take over
    While an operator holds the call (``take_over`` … ``hand_back``), caller audio is not
    sent to the provider, the provider's audio is not sent to the caller, and the operator's
    microphone (``operator_audio``: PCM16 at :data:`LISTEN_RATE`) goes to the caller in the
    carrier's format; the operator hears the caller alone (``operator_ear()``). With
    ``keep_audio`` (a transcriber is configured) both sides are kept, bounded, for the
    transcript. Handing back gives what the agent must be told: how long the operator spoke
    with the caller, and what was said when it was transcribed (:func:`hand_back_note`).

The desk makes no I/O of its own: the session and the API (``bridge/operator_control.py``)
carry out what it decides.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from switchboard.audio import Framer, StreamConverter
from switchboard.media import AudioFormat, AudioSpec
from switchboard.providers.events import (
    AudioOutput,
    CallerTranscript,
    ProviderEvent,
    ResponseDone,
    TextOutput,
)

__all__ = ["LISTEN_RATE", "AudioTap", "ListenMix", "OperatorDesk", "hand_back_note"]

#: The sample rate of what listeners hear and operators send (PCM16 LE mono).
LISTEN_RATE = 16000
#: How far outgoing audio may run ahead of the caller's frames in the mix.
MAX_AHEAD_MS = 400
_LISTEN_PCM = AudioSpec(AudioFormat.PCM16, LISTEN_RATE)
#: How much of each side of a take-over is kept for its transcript (PCM16 at LISTEN_RATE).
MAX_KEPT_S = 600


class AudioTap:
    """One listener's bounded queue of PCM16 chunks (the oldest go first when it is full)."""

    def __init__(self, maxlen: int = 50) -> None:
        self.dropped = 0
        self._queue: deque[bytes] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()

    def offer(self, data: bytes) -> None:
        """Queue ``data``, never waiting."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(data)
        self._ready.set()

    async def get(self, timeout_s: float | None = None) -> bytes | None:
        """The next chunk; None when none came within ``timeout_s``."""
        while not self._queue:
            self._ready.clear()
            try:  # asyncio.timeout: wait_for (3.11) may swallow a cancellation of the reader
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._queue.popleft()


class ListenMix:
    """Both sides of a call mixed, paced by the caller's frames (pure; see the module doc)."""

    def __init__(self, carrier: AudioSpec) -> None:
        pcm = AudioSpec(AudioFormat.PCM16, carrier.sample_rate)
        self._caller = StreamConverter(carrier, pcm)
        self._agent = StreamConverter(carrier, pcm)
        self._out = StreamConverter(pcm, AudioSpec(AudioFormat.PCM16, LISTEN_RATE))
        self._ahead = bytearray()
        self._max_ahead = carrier.sample_rate * 2 * MAX_AHEAD_MS // 1000

    def agent(self, payload: bytes) -> None:
        """A frame sent to the caller (the agent's or the operator's)."""
        self._ahead += self._agent.process(payload)
        excess = len(self._ahead) - self._max_ahead
        if excess > 0:
            del self._ahead[: excess + (excess & 1)]

    def clear(self) -> None:
        """The caller's buffer was cleared: what was sent ahead will not be heard."""
        self._ahead.clear()
        self._agent.reset()

    def caller(self, payload: bytes) -> bytes:
        """A caller frame: the mixed audio of its duration, at :data:`LISTEN_RATE`."""
        heard = self._caller.process(payload)
        n = len(heard) & ~1
        if not n:
            return b""
        take = bytes(self._ahead[:n])
        del self._ahead[:n]
        mixed = np.frombuffer(heard[:n], dtype="<i2").astype(np.int32)
        if take:
            other = np.frombuffer(take, dtype="<i2").astype(np.int32)
            mixed[: other.size] += other
        pcm = np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
        return self._out.process(pcm)


class OperatorDesk:
    """One call's operator state and audio taps (see the module docstring).

    Args:
        carrier: the carrier's audio format (what ``caller_audio``/``agent_audio`` carry).
    """

    def __init__(self, carrier: AudioSpec) -> None:
        self.carrier = carrier
        #: who has taken the call over (None: the agent has it)
        self.holder: str | None = None
        self._taken_at = 0.0
        self._mix: ListenMix | None = None
        self._listeners: set[AudioTap] = set()
        self._ears: set[AudioTap] = set()
        # Converters are made when first needed: most calls never meet an operator.
        self._ear_converter: StreamConverter | None = None
        self._mic: StreamConverter | None = None
        self._framer = Framer(carrier)
        #: each side of the current take-over, PCM16 at LISTEN_RATE, when ``keep_audio``
        self.keep_audio = False
        self.kept: dict[str, bytearray] = {"caller": bytearray(), "operator": bytearray()}
        self._kept_caller: StreamConverter | None = None
        #: where partial transcripts go (role, the text so far; "" once it is final)
        self.on_partial: Callable[[str, str], None] | None = None
        self._partials: dict[str, str] = {}

    # -- take over -------------------------------------------------------------------------------
    @property
    def taken_over(self) -> bool:
        return self.holder is not None

    def take_over(self, by: str, now_ms: float) -> bool:
        """``by`` takes the call; False when someone already has it."""
        if self.holder is not None:
            return False
        self.holder, self._taken_at = by, now_ms
        self._mic = StreamConverter(AudioSpec(AudioFormat.PCM16, LISTEN_RATE), self.carrier)
        self._kept_caller = StreamConverter(self.carrier, _LISTEN_PCM)
        self._framer.clear()
        for side in self.kept.values():
            side.clear()
        return True

    def hand_back(self, now_ms: float) -> float | None:
        """The agent has the call again; how many seconds the operator had it (None: nobody
        had taken it over)."""
        if self.holder is None:
            return None
        self.holder = None
        return max(0.0, (now_ms - self._taken_at) / 1000.0)

    def screen(self, event: ProviderEvent) -> bool:
        """See a provider event before the bridge does: partial transcripts go to
        ``on_partial``; True when the event is kept from the call (the agent's audio while an
        operator has it)."""
        match event.data:
            case AudioOutput():
                return self.holder is not None
            case TextOutput(text=text, final=final):
                self._partial("agent", text, final)
            case CallerTranscript(text=text, final=final):
                self._partial("caller", text, final)
            case ResponseDone():
                self._partial("agent", "", True)
            case _:
                pass
        return False

    def _partial(self, role: str, text: str, final: bool) -> None:
        # Providers send partials either as deltas (OpenAI) or as the text so far (the
        # pipeline): text that extends what is held replaces it, anything else is appended.
        if self.on_partial is None:
            return
        held = self._partials.get(role, "")
        if final:
            if held:
                self._partials[role] = ""
                self.on_partial(role, "")
            return
        held = text if text.startswith(held) else held + text
        self._partials[role] = held
        self.on_partial(role, held)

    def operator_audio(self, pcm: bytes) -> list[bytes]:
        """The operator's microphone (PCM16 at :data:`LISTEN_RATE`) as carrier frames for the
        caller; nothing unless the call is taken over."""
        if self.holder is None:
            return []
        self._keep("operator", pcm)
        assert self._mic is not None  # made at take-over
        return self._framer.push(self._mic.process(pcm))

    def _keep(self, side: str, pcm: bytes) -> None:
        if self.keep_audio and len(self.kept[side]) < MAX_KEPT_S * LISTEN_RATE * 2:
            self.kept[side] += pcm

    # -- audio taps ------------------------------------------------------------------------------
    def caller_audio(self, payload: bytes) -> None:
        """A caller frame reached the bridge."""
        if self.holder is not None and self.keep_audio:
            assert self._kept_caller is not None  # made at take-over
            self._keep("caller", self._kept_caller.process(payload))
        if self._ears:
            if self._ear_converter is None:
                self._ear_converter = StreamConverter(self.carrier, _LISTEN_PCM)
            heard = self._ear_converter.process(payload)
            for ear in self._ears:
                ear.offer(heard)
        if self._mix is not None:
            mixed = self._mix.caller(payload)
            if mixed:
                for listener in self._listeners:
                    listener.offer(mixed)

    def agent_audio(self, payload: bytes) -> None:
        """A frame was sent to the caller."""
        if self._mix is not None:
            self._mix.agent(payload)

    def clear(self) -> None:
        """The caller's buffer was cleared."""
        if self._mix is not None:
            self._mix.clear()

    @contextmanager
    def listen(self) -> Iterator[AudioTap]:
        """Both sides mixed, for the ``with`` block."""
        tap = AudioTap()
        if self._mix is None:
            self._mix = ListenMix(self.carrier)
        self._listeners.add(tap)
        try:
            yield tap
        finally:
            self._listeners.discard(tap)
            if not self._listeners:
                self._mix = None

    @contextmanager
    def operator_ear(self) -> Iterator[AudioTap]:
        """The caller alone (for the operator who has the call), for the ``with`` block."""
        tap = AudioTap()
        self._ears.add(tap)
        try:
            yield tap
        finally:
            self._ears.discard(tap)

    @property
    def listeners(self) -> int:
        return len(self._listeners)


def hand_back_note(seconds: float, by: str, transcript: str | None = None) -> str:
    """What the agent is told when an operator hands the call back (``transcript``: what was
    said meanwhile, when it was transcribed)."""
    said = f" What was said: {transcript}" if transcript else " You did not hear that conversation."
    return (
        f"An operator ({by}) spoke with the caller for {round(seconds)} s while you were off "
        f"the line.{said} Continue the call from here; acknowledge briefly that you are back."
    )
