"""An outbound call's answering-machine detection, as the session carries it out.

:class:`AmdLink` holds the call's :class:`~switchboard.telephony.amd.MachineDetector` (the
decisions) and does what it decides: until a verdict the agent stays quiet and the provider
hears silence (a machine's recorded greeting must not start a conversation); a person gets
the agent's greeting (its recorded ``greeting_audio``, or the provider saying ``greeting``);
a machine gets the policy: hang up, or leave the message — spoken by the provider, else by
the offline voice — and hang up once it has played. The timeline carries ``amd.verdict``
(each carrier report) and ``amd.outcome`` (``answered`` / ``voicemail``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from switchboard.bridge.actions import Action, Say
from switchboard.bridge.core import BridgeCore
from switchboard.bridge.sink import CallSink
from switchboard.errors import UnsupportedOperation
from switchboard.providers.base import BaseProvider
from switchboard.telephony.amd import (
    AmdStep,
    MachineDetection,
    MachineDetector,
    Outcome,
    Verdict,
)

__all__ = ["AmdLink", "AmdRunner"]

#: How long a left message may take to play before the call is hung up anyway (ms).
MESSAGE_GRACE_MS = 60_000.0


class AmdRunner(Protocol):
    """What AMD needs of its call (``CallSession`` provides it)."""

    @property
    def core(self) -> BridgeCore: ...

    @property
    def sink(self) -> CallSink: ...

    @property
    def provider(self) -> BaseProvider: ...

    @property
    def log(self) -> logging.LoggerAdapter[Any]: ...

    def now(self) -> float: ...

    async def apply(self, actions: list[Action]) -> None: ...

    async def play_greeting(self) -> bool:
        """Play the agent's recorded greeting, if it has one (False: none)."""
        ...

    async def play_offline(self, text: str, what: str) -> bool:
        """Speak ``text`` with the offline voice to its end (False: no voice)."""
        ...


class AmdLink:
    """One outbound call's AMD (see the module docstring)."""

    def __init__(
        self,
        runner: AmdRunner,
        detection: MachineDetection,
        *,
        greeting: str | None,
        spawn: Callable[[Awaitable[Any], str], None],
        beep_wait_ms: float = 20_000,
    ) -> None:
        self.detector = MachineDetector(detection, beep_wait_ms=beep_wait_ms)
        self._runner = runner
        self._greeting = greeting
        self._spawn = spawn
        self._timer: asyncio.TimerHandle | None = None
        self._started = False
        self._early: list[tuple[Verdict, str]] = []

    @property
    def listening(self) -> bool:
        """No verdict acted on yet: the agent is quiet, the provider hears silence."""
        return self.detector.listening

    @property
    def outcome(self) -> Outcome | None:
        return self.detector.outcome

    async def start(self) -> None:
        """The bridge runs: act on the verdicts that came before it did."""
        self._started = True
        self.detector.start(self._runner.now())
        self._schedule()
        early, self._early = self._early, []
        for verdict, answered_by in early:
            await self.verdict(verdict, answered_by)

    async def verdict(self, verdict: Verdict, answered_by: str) -> Outcome | None:
        """A carrier's report (``answered_by`` as it said it); returns the call's outcome once
        decided. Before :meth:`start` it is kept for then."""
        if not self._started:
            self._early.append((verdict, answered_by))
            return None
        r = self._runner
        r.sink.timeline("amd.verdict", r.now(), {"verdict": verdict.value, "raw": answered_by})
        step = self.detector.verdict(verdict, r.now())
        if step is not None:
            await self._act(step)
        self._schedule()
        return self.detector.outcome

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def _tick(self) -> None:
        step = self.detector.tick(self._runner.now())
        if step is not None:
            await self._act(step)
        self._schedule()

    async def _act(self, step: AmdStep) -> None:
        r, now = self._runner, self._runner.now()
        r.sink.timeline("amd.outcome", now, {"outcome": self.outcome, "step": step.value})
        r.log.info("answering-machine detection: %s → %s", self.outcome, step.value)
        match step:
            case AmdStep.GREET:
                if not await r.play_greeting() and self._greeting:
                    await r.apply([Say(self._greeting, "greeting")])
            case AmdStep.HANG_UP:
                await r.apply(r.core.request_hang_up("voicemail", now, after_reply=False))
            case AmdStep.LEAVE_MESSAGE:
                await self._leave_message(self.detector.detection.message or "")
            case AmdStep.WAIT:
                pass

    async def _leave_message(self, message: str) -> None:
        r = self._runner
        try:
            # The hang-up waits for the reply that follows (the message) to have played.
            hang_up = r.core.request_hang_up(
                "voicemail", r.now(), after_reply=True, grace_ms=MESSAGE_GRACE_MS
            )
            await r.apply(hang_up)
            await r.provider.say(message)
        except UnsupportedOperation:
            r.log.info("provider cannot speak the message; the offline voice leaves it")
            if not await r.play_offline(message, "voicemail"):  # played like a reply, then
                await r.apply(r.core.request_hang_up("voicemail", r.now(), after_reply=False))

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.detector.due_at
        if due is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(due / 1000.0, lambda: self._spawn(self._tick(), "amd"))
