"""An operator's actions on one bridged call, carried out on its session.

The call manager's ``say``, ``whisper``, ``take_over`` and ``hand_back`` call these with the
call's :class:`~switchboard.bridge.session.CallSession`; the decisions are the
:class:`~switchboard.bridge.operator.OperatorDesk`'s and the core's. Each action is recorded on
the call's timeline as ``operator.<action>`` by the API with who did it; what happens to the
conversation (the barge-in that stops the agent, the note the agent gets back) is recorded
here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from switchboard.bridge.control import checked_destination
from switchboard.bridge.operator import LISTEN_RATE, hand_back_note
from switchboard.bridge.session import CallSession
from switchboard.config import Settings
from switchboard.errors import SwitchboardError, UnsupportedOperation

__all__ = [
    "OperatorConflict",
    "Transcriber",
    "hand_back",
    "operator_transcriber",
    "say",
    "send_operator_audio",
    "take_over",
    "warm_transfer",
    "whisper",
]

logger = logging.getLogger(__name__)


#: PCM16 at :data:`LISTEN_RATE` in, its words out.
Transcriber = Callable[[bytes], Awaitable[str]]
#: How long a take-over's transcript may take before the agent is told without it.
TRANSCRIBE_TIMEOUT_S = 20.0


class OperatorConflict(SwitchboardError):
    """The action does not fit the call's state (taken over already, not taken over...)."""


async def warm_transfer(session: CallSession | None, destination: str, call_id: str) -> None:
    """Start a warm transfer of the call to ``destination`` (the agent's plan passed): it
    runs beside the call; when it fails the agent is told, and tells the caller.

    Raises:
        OperatorConflict: no warm transfer on this call (its carrier, no media yet, or one
            under way already).
        DialRefused: ``SWITCHBOARD_OUTBOUND_ALLOW`` does not allow ``destination`` (logged).
    """
    warm = session.warm if session is not None else None
    if session is None or warm is None:
        raise OperatorConflict("warm transfer is not available on this call (carrier or media)")
    if warm.holding:
        raise OperatorConflict("a warm transfer is already under way")
    to = checked_destination(warm.options.outbound, destination, "API warm transfer", call_id)

    async def run() -> None:
        outcome = await warm.transfer(to)
        if outcome is not None:  # the caller is back: the agent says so
            await whisper(session, outcome, respond=True)

    session.spawn(run(), "warm transfer")


async def say(session: CallSession, text: str) -> None:
    """The agent speaks ``text`` now.

    Raises:
        OperatorConflict: an operator has the call (the agent is off the line).
        UnsupportedOperation: the provider cannot speak arbitrary text.
    """
    if session.operator.taken_over:
        raise OperatorConflict("an operator has the call: hand it back first")
    await session.provider.say(text)


async def whisper(session: CallSession, text: str, *, respond: bool = False) -> None:
    """Tell the agent ``text`` without the caller hearing it (``respond``: it answers now).

    Raises:
        UnsupportedOperation: the provider cannot take a note.
    """
    await session.provider.add_note(text, respond=respond and not session.operator.taken_over)


async def take_over(session: CallSession, by: str, *, keep_audio: bool = False) -> None:
    """``by`` has the call from now on: the agent stops (as in a barge-in) and hears nothing
    until :func:`hand_back` (``keep_audio``: both sides are kept for a transcript).

    Raises:
        OperatorConflict: the call is taken over already.
    """
    now = session.now()
    if not session.operator.take_over(by, now):
        raise OperatorConflict(f"the call is taken over already (by {session.operator.holder})")
    session.operator.keep_audio = keep_audio
    actions = session.core.operator_took_over(now)
    await session.apply(actions)
    if not actions:  # nothing playing: stop a reply that may be on its way
        try:
            await asyncio.wait_for(session.provider.interrupt(None), 5.0)
        except (SwitchboardError, TimeoutError, OSError) as exc:
            logger.info("call %s: provider interrupt at take-over: %s", session.call_id, exc)
    logger.info("call %s: taken over by an operator", session.call_id)


async def hand_back(session: CallSession, transcribe: Transcriber | None = None) -> float:
    """The agent has the call again, told how long an operator had it (and what was said,
    transcribed by ``transcribe`` when given); returns the seconds the operator had it.

    Raises:
        OperatorConflict: the call is not taken over.
    """
    desk = session.operator
    by = desk.holder or "operator"
    seconds = desk.hand_back(session.now())
    if seconds is None:
        raise OperatorConflict("the call is not taken over")
    session.core.keep_alive(session.now())
    transcript = None
    if transcribe is not None and desk.keep_audio:
        transcript = await _transcript(transcribe, desk.kept, session.call_id)
    desk.keep_audio = False
    note = hand_back_note(seconds, by, transcript)
    try:
        await session.provider.add_note(note, respond=True)
    except UnsupportedOperation:
        logger.info("call %s: provider takes no notes; handed back untold", session.call_id)
    session.sink.timeline(
        "operator.context", session.now(), {"note": note, "seconds": round(seconds, 1)}
    )
    logger.info("call %s: handed back after %.1f s", session.call_id, seconds)
    return seconds


async def _transcript(
    transcribe: Transcriber, kept: dict[str, bytearray], call_id: str
) -> str | None:
    """Each side of the take-over in words (None when nothing was made out, or it failed)."""
    said: list[str] = []
    for side in ("caller", "operator"):
        audio = bytes(kept[side])
        kept[side].clear()
        if len(audio) < LISTEN_RATE // 5:  # under 100 ms: nothing to read
            continue
        try:
            text = await asyncio.wait_for(transcribe(audio), TRANSCRIBE_TIMEOUT_S)
        except (SwitchboardError, TimeoutError, OSError) as exc:
            logger.warning("call %s: take-over transcript failed: %s", call_id, exc)
            return None
        if text:
            said.append(f'the {side} said "{text}"')
    return "; ".join(said) + "." if said else None


def operator_transcriber(settings: Settings) -> Transcriber | None:
    """What transcribes a take-over (``SWITCHBOARD_OPERATOR_TRANSCRIBER``); None: nothing."""
    return _local_transcribe if settings.operator_transcriber == "local" else None


async def _local_transcribe(pcm: bytes) -> str:
    """PCM16 16 kHz in words, by the local provider's Whisper on its thread pool."""
    from switchboard.providers.local import models  # the [local] extra, loaded on first use
    from switchboard.providers.local.stt import transcribe_pcm16

    loop = asyncio.get_running_loop()
    text, _confidence = await loop.run_in_executor(
        models.stt_pool(), transcribe_pcm16, pcm, LISTEN_RATE
    )
    return text


async def send_operator_audio(session: CallSession, pcm: bytes) -> bool:
    """The operator's microphone (PCM16 16 kHz) to the caller, while the call is taken over;
    False when the caller is gone."""
    desk = session.operator
    for frame in desk.operator_audio(pcm):
        desk.agent_audio(frame)  # listeners hear the operator too, and the recording has it
        if session.recorder is not None:
            session.recorder.agent_audio(frame, session.now())
        if not await session.carrier.send(session.codec.send_media(frame)):
            return False
    session.core.keep_alive(session.now())
    return True
