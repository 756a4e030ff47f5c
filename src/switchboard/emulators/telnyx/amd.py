"""Telnyx answering-machine detection, as the emulator reports it for dialled calls.

From developers.telnyx.com/docs/voice/programmable-voice/answering-machine-detection:
``answering_machine_detection`` on ``POST /v2/calls`` is ``premium``, ``detect``,
``detect_beep``, ``detect_words``, ``greeting_end`` or ``disabled``. Premium sends
``call.machine.premium.detection.ended`` with ``result`` ``human_residence``,
``human_business``, ``machine``, ``silence``, ``fax_detected`` or ``not_sure``, and for a
beep ``call.machine.premium.greeting.ended`` with ``beep_detected``; the others send
``call.machine.detection.ended`` (``human`` / ``machine`` / ``not_sure``) and, except
``detect``, ``call.machine.greeting.ended`` (``beep_detected``). The reports are timed from
the start of the call's media, from the callee the emulator plays
(:class:`~switchboard.emulators.answering_machine.AnsweringMachine`, or a person).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from switchboard.emulators.answering_machine import HUMAN_MS, AnsweringMachine
from switchboard.emulators.telnyx.calls import EmulatedCall

__all__ = ["MODES", "amd_reports", "report_amd"]

#: The ``answering_machine_detection`` values the API accepts.
MODES = ("premium", "detect", "detect_beep", "detect_words", "greeting_end", "disabled")


def amd_reports(mode: str, machine: AnsweringMachine | None) -> list[tuple[float, str, str]]:
    """``(ms after media starts, event type, result)`` for a callee under ``mode``."""
    if mode == "disabled":
        return []
    premium = mode == "premium"
    detected = "call.machine.premium.detection.ended" if premium else "call.machine.detection.ended"
    greeting = "call.machine.premium.greeting.ended" if premium else "call.machine.greeting.ended"
    if machine is None:
        return [(HUMAN_MS, detected, "human_residence" if premium else "human")]
    out = [(machine.machine_start_ms, detected, "machine")]
    if mode != "detect":
        out.append((machine.beep_end_ms, greeting, "beep_detected"))
    return out


async def report_amd(
    call: EmulatedCall,
    reports: list[tuple[float, str, str]],
    send: Callable[[EmulatedCall, str, dict[str, Any]], object],
    *,
    speed: float = 1.0,
) -> None:
    """Send ``reports`` as the call's media plays (none once the call has ended). A call
    nobody streams (a warm transfer's new leg) is listened to from a second after its answer."""
    loop = asyncio.get_running_loop()
    answered_at: float | None = None
    while call.leg is None:
        if not call.is_alive:
            return
        if call.state == "answered" and answered_at is None:
            answered_at = loop.time()
        if answered_at is not None and loop.time() - answered_at >= 1.0 / speed:
            break
        await asyncio.sleep(0.01)
    t0 = loop.time()
    for at_ms, event_type, result in reports:
        await asyncio.sleep(max(0.0, t0 + at_ms / 1000 / speed - loop.time()))
        if not call.is_alive:
            return
        send(call, event_type, call.payload(result=result))
