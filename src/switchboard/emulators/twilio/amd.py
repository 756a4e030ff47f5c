"""Twilio answering-machine detection, as the emulator reports it for outbound calls.

From twilio.com/docs/voice/answering-machine-detection: ``MachineDetection`` is ``Enable``
(``AnsweredBy`` as soon as the callee is identified) or ``DetectMessageEnd`` (for a machine,
only once its greeting has ended — ``machine_end_beep``, ``machine_end_silence`` or
``machine_end_other``). With ``AsyncAmd=true`` the call is connected at once and the verdict
is POSTed, signed like any webhook, to ``AsyncAmdStatusCallback`` with ``AccountSid``,
``CallSid``, ``AnsweredBy`` and ``MachineDetectionDuration`` (ms); without it the voice
webhook request carries ``AnsweredBy`` (the emulator does not hold the call for the
detection's duration). The verdict comes from the callee the emulator plays: an
:class:`~switchboard.emulators.answering_machine.AnsweringMachine`, or a person.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from switchboard.emulators.answering_machine import HUMAN_MS, AnsweringMachine
from switchboard.emulators.twilio.caller import TwilioCaller

__all__ = ["MODES", "detection", "report_async_amd"]

logger = logging.getLogger(__name__)

#: The ``MachineDetection`` values Twilio accepts.
MODES = ("Enable", "DetectMessageEnd")


def detection(mode: str, machine: AnsweringMachine | None) -> tuple[str, float]:
    """(``AnsweredBy``, ms after the stream starts) for a callee heard in ``mode``."""
    if machine is None:
        return "human", HUMAN_MS
    if mode == "Enable":
        return "machine_start", machine.machine_start_ms
    return "machine_end_beep", machine.beep_end_ms


async def report_async_amd(
    caller: TwilioCaller,
    url: str,
    answered_by: str,
    after_ms: float,
    *,
    resource: dict[str, Any],
    speed: float = 1.0,
) -> None:
    """POST the verdict to ``url`` ``after_ms`` into the call's media stream."""
    while caller.report.stream_sid is None:
        if caller.status == "completed":
            return
        await asyncio.sleep(0.01)
    await asyncio.sleep(after_ms / 1000 / speed)
    if caller.status == "completed":
        return
    resource["answered_by"] = answered_by
    params = [
        ("AccountSid", caller.report.account_sid),
        ("CallSid", caller.report.call_sid),
        ("AnsweredBy", answered_by),
        ("MachineDetectionDuration", str(int(after_ms))),
    ]
    try:
        resp = await caller.signed_post(url, params)
    except httpx.HTTPError as exc:
        logger.info("AMD callback to %s failed: %s", url, exc)
        caller.report.webhooks.append((f"amd:{answered_by}", 0))
        return
    caller.report.webhooks.append((f"amd:{answered_by}", resp.status_code))
