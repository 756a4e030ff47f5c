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

from switchboard.bridge.operator import hand_back_note
from switchboard.bridge.session import CallSession
from switchboard.errors import SwitchboardError, UnsupportedOperation

__all__ = ["OperatorConflict", "hand_back", "say", "send_operator_audio", "take_over", "whisper"]

logger = logging.getLogger(__name__)


class OperatorConflict(SwitchboardError):
    """The action does not fit the call's state (taken over already, not taken over...)."""


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


async def take_over(session: CallSession, by: str) -> None:
    """``by`` has the call from now on: the agent stops (as in a barge-in) and hears nothing
    until :func:`hand_back`.

    Raises:
        OperatorConflict: the call is taken over already.
    """
    now = session.now()
    if not session.operator.take_over(by, now):
        raise OperatorConflict(f"the call is taken over already (by {session.operator.holder})")
    actions = session.core.operator_took_over(now)
    await session.apply(actions)
    if not actions:  # nothing playing: stop a reply that may be on its way
        try:
            await asyncio.wait_for(session.provider.interrupt(None), 5.0)
        except (SwitchboardError, TimeoutError, OSError) as exc:
            logger.info("call %s: provider interrupt at take-over: %s", session.call_id, exc)
    logger.info("call %s: taken over by an operator", session.call_id)


async def hand_back(session: CallSession, transcript: str | None = None) -> float:
    """The agent has the call again, told how long an operator had it (and what was said,
    when ``transcript`` is given); returns the seconds the operator had it.

    Raises:
        OperatorConflict: the call is not taken over.
    """
    by = session.operator.holder or "operator"
    seconds = session.operator.hand_back(session.now())
    if seconds is None:
        raise OperatorConflict("the call is not taken over")
    session.core.keep_alive(session.now())
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


async def send_operator_audio(session: CallSession, pcm: bytes) -> bool:
    """The operator's microphone (PCM16 16 kHz) to the caller, while the call is taken over;
    False when the caller is gone."""
    desk = session.operator
    for frame in desk.operator_audio(pcm):
        desk.agent_audio(frame)  # listeners hear the operator too
        if not await session.carrier.send(session.codec.send_media(frame)):
            return False
    session.core.keep_alive(session.now())
    return True
