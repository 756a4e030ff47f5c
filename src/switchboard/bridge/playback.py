"""Audio a call plays as if the agent said it: the recorded greeting, a line in the offline
voice (a voicemail message, a failover's filler) and the closing apology.

A reply is framed for the carrier and played with ``CallSession.play_agent_audio`` (the
failover filler's way too): handed to the bridge core like the provider's audio, so it is
paced, marked, interruptible and in the transcript like any reply. The apology is the
exception: it is said as the call ends (the provider failed), so it goes straight to the
carrier and is waited for (:meth:`CarrierLink.play_to_end`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from switchboard.audio import Framer
from switchboard.bridge.carrier import CarrierLink
from switchboard.bridge.sink import CallSink
from switchboard.media import AudioSpec
from switchboard.recordings import CallRecording
from switchboard.telephony.base import StreamStarted

__all__ = ["PlayingSession", "apologise", "play_as_reply", "play_offline"]

#: How long the offline voice may take to say a line before the call goes on without it.
SYNTHESIS_TIMEOUT_S = 10.0


class PlayingSession(Protocol):
    """What these functions need of the call (``CallSession`` provides it)."""

    started: StreamStarted
    apology: str | None
    apology_audio: Callable[[str, AudioSpec], Awaitable[bytes | None]] | None
    recorder: CallRecording | None
    sink: CallSink
    log: logging.LoggerAdapter[Any]

    @property
    def carrier(self) -> CarrierLink: ...

    def now(self) -> float: ...

    async def play_agent_audio(self, frames: list[bytes], text: str) -> None: ...


async def play_as_reply(session: PlayingSession, audio: bytes, text: str) -> None:
    """Play ``audio`` (the carrier's format) like an agent reply saying ``text``."""
    framer = Framer(session.started.audio)
    await session.play_agent_audio(framer.push(audio) + framer.flush(), text)


async def _synthesize(session: PlayingSession, text: str) -> bytes | None:
    if session.apology_audio is None:
        return None
    try:
        return await asyncio.wait_for(
            session.apology_audio(text, session.started.audio), SYNTHESIS_TIMEOUT_S
        )
    except TimeoutError:
        return None


async def play_offline(session: PlayingSession, text: str, what: str) -> bool:
    """Speak ``text`` with the offline voice, played like an agent reply (False: no offline
    voice, or it failed; ``what`` names the line in the log)."""
    if session.apology_audio is None:
        return False
    audio = await _synthesize(session, text)
    if not audio:
        session.log.warning("no offline voice for the %s", what)
        return False
    await play_as_reply(session, audio, text)
    return True


async def apologise(session: PlayingSession) -> None:
    """Speak the agent's apology (the provider failed) and wait until it has played."""
    if not session.apology or session.apology_audio is None:
        return
    audio = await _synthesize(session, session.apology)
    recorder = session.recorder
    if audio and recorder is not None:  # what play_to_end sends: clear, then this
        recorder.cleared(session.now())
        recorder.agent_audio(audio, session.now())
    spec = session.started.audio
    if audio and await session.carrier.play_to_end(audio, spec, "apology"):
        session.sink.transcript("agent", session.apology, session.now(), False)
