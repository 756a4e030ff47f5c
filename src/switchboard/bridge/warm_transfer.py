"""A warm transfer, as one call's session runs it: hold audio, the new leg, the briefing.

``transfer_call(destination, mode="warm")`` (and ``POST /v1/calls/{id}/transfer`` with
``mode: warm``) come here. :class:`WarmTransfer` plays hold audio to the caller (the agent's
``hold_audio``, else the soft sound of ``bridge/thinking.py``) while the caller's voice goes
to the provider as silence, dials the destination through the carrier's :class:`WarmLeg`,
and follows :class:`~switchboard.bridge.warm_plan.WarmPlan`: a person who answers hears the
briefing (spoken by the offline voice, served to the carrier from :class:`Briefings`), then —
once the carrier says it has played to its end (``WarmLeg.briefing_played``) — caller and
person are joined and the call's session ends (``transferred``); no answer, a
machine, or a failure gives the caller back to the agent, with a message that says why.

The destination has passed the agent's dial plan (as every transfer) and must also pass
``SWITCHBOARD_OUTBOUND_ALLOW``: a warm transfer places an outbound call of its own.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from switchboard.bridge.core import BridgeCore
from switchboard.bridge.sink import CallSink
from switchboard.bridge.thinking import ThinkingAudio
from switchboard.bridge.warm_plan import (
    Brief,
    GiveUp,
    Join,
    LegStatus,
    WarmPlan,
    WarmStep,
    briefing_text,
    failure_message,
)
from switchboard.errors import SwitchboardError, ToolError
from switchboard.media import AudioFormat, AudioSpec, Usage
from switchboard.providers.events import ProviderEventType
from switchboard.telephony.dialplan import DialPlan, require_allowed
from switchboard.telephony.warm import Briefing, Briefings
from switchboard.tools import ToolResult

__all__ = ["WarmLeg", "WarmOptions", "WarmTransfer"]

#: The briefing's audio: what the offline voice speaks, served as a WAV.
BRIEFING_SPEC = AudioSpec(AudioFormat.PCM16, 8000)


class WarmLeg(Protocol):
    """The carrier's new leg (Twilio: ``telephony/twilio/warm.py``)."""

    async def dial(self, destination: str, *, ring_s: float) -> None: ...

    async def poll(self) -> tuple[LegStatus, str | None]: ...

    async def brief(self, token: str, briefing: Briefing) -> None:
        """Play ``briefing`` (stored under ``token`` in :class:`Briefings`) to the person."""
        ...

    def briefing_played(self) -> bool:
        """The carrier has said the briefing played to its end (its webhook came)."""
        ...

    async def join(self) -> None: ...

    async def drop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WarmOptions:
    """What a call's warm transfers need, from the wiring.

    Attributes:
        leg: makes the carrier's leg for a conference/room name.
        outbound: ``SWITCHBOARD_OUTBOUND_ALLOW``'s plan (the new leg is an outbound call).
        briefings: where briefings wait for the carrier's fetch.
        speak: the offline voice (text → audio in a spec), None without one.
        ring_s: how long the destination may ring.
        hold_audio: the agent's hold sound in the carrier's format (None: generated).
        agent: the agent's name, said in the briefing.
        poll_s: how often the leg's state is fetched.
    """

    leg: Callable[[str], WarmLeg]
    outbound: DialPlan
    briefings: Briefings
    speak: Callable[[str, AudioSpec], Awaitable[bytes | None]] | None = None
    ring_s: float = 30.0
    hold_audio: bytes | None = None
    agent: str | None = None
    poll_s: float = 0.25


class WarmRunner(Protocol):
    """What a warm transfer needs of its call (``CallSession`` provides it)."""

    call_id: str

    @property
    def core(self) -> BridgeCore: ...

    @property
    def sink(self) -> CallSink: ...

    def now(self) -> float: ...

    def end(self, reason: str) -> None: ...


class WarmTransfer:
    """One call's warm transfers (one at a time); see the module docstring.

    Args:
        runner: the call.
        options: see :class:`WarmOptions`.
        spec: the carrier's audio format.
        send: sends one hold-audio frame to the caller.
        transcript: the call's transcript so far, as ``(role, text)`` pairs.
    """

    def __init__(
        self,
        runner: WarmRunner,
        options: WarmOptions,
        *,
        spec: AudioSpec,
        send: Callable[[bytes], Awaitable[None]],
        transcript: Callable[[], list[tuple[str, str]]],
    ) -> None:
        self._r, self.options, self._spec = runner, options, spec
        self._send, self._transcript = send, transcript
        #: a warm transfer is under way: the caller is on hold
        self.holding = False
        #: the join is under way: the caller's stream ending now is the agent leaving
        self.joining = False

    def check(self, destination: str) -> str:
        """``destination`` as dialled, if ``SWITCHBOARD_OUTBOUND_ALLOW`` allows it.

        Raises:
            DialRefused: it does not.
            ToolError: a warm transfer is already under way.
        """
        if self.holding:
            raise ToolError("a warm transfer is already under way")
        return require_allowed(self.options.outbound, destination)

    async def transfer(self, destination: str, *, summary: str | None = None) -> str | None:
        """Run a warm transfer to ``destination`` (checked); None once the caller is joined,
        else what the agent should tell the caller."""
        r, o = self._r, self.options
        self.holding = True
        r.sink.timeline("transfer.warm.started", r.now(), {"to": destination})
        hold = ThinkingAudio(
            spec=self._spec,
            send=self._send,
            busy=lambda _now: False,
            clock=r.now,
            sink=_HoldTimeline(r.sink),
            audio=o.hold_audio,
            after_ms=0.0,
            max_ms=(o.ring_s + 60.0) * 1000.0,
        )
        token: str | None = None
        try:
            await self._until_quiet()
            text = briefing_text(self._transcript(), summary=summary, agent=o.agent)
            step, token = await hold.around(self._run(destination, text))
        finally:
            hold.stop("transfer_done")
            self.holding = False
            if token is not None:
                o.briefings.discard(token)
        if isinstance(step, Join):
            r.end("transferred")
            return None
        reason = step.reason if isinstance(step, GiveUp) else "failed"
        r.sink.timeline("transfer.warm.failed", r.now(), {"to": destination, "reason": reason})
        return failure_message(reason, destination)

    async def _until_quiet(self, limit_ms: float = 8000.0) -> None:
        """Let the agent finish what it is saying ("connecting you now") before the hold."""
        r = self._r
        end = r.now() + limit_ms
        # agent_speaking is worked out from the clock (what has played), not signalled
        while r.core.agent_speaking(r.now()) and r.now() < end:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def _run(self, destination: str, text: str) -> tuple[WarmStep, str | None]:
        r, o = self._r, self.options
        leg = o.leg(f"warm-{r.call_id}")
        plan = WarmPlan(started_ms=r.now(), ring_ms=o.ring_s * 1000.0)
        speaking = asyncio.ensure_future(self._speak(text))
        token: str | None = None
        try:
            await leg.dial(destination, ring_s=o.ring_s)
            step: WarmStep | None = None
            sent_at = 0.0
            while step is None:
                await asyncio.sleep(o.poll_s)
                r.core.keep_alive(r.now())  # the caller is on hold, not silent
                status, answered_by = await leg.poll()
                now = r.now()
                step = (
                    plan.leg(status, answered_by, now_ms=now)
                    or (plan.briefed() if leg.briefing_played() else None)
                    or plan.tick(now)
                )
                if isinstance(step, Brief):
                    briefing = await speaking
                    token = o.briefings.put(briefing)
                    r.sink.timeline("transfer.warm.briefing", r.now(), {"text": text})
                    await leg.brief(token, briefing)
                    sent_at = r.now()  # the join waits for the carrier's end of it
                    plan.briefing_sent(sent_at, _played_s(briefing) * 1000.0)
                    step = None
            if isinstance(step, Join):
                played = {"by": plan.joined_by, "after_ms": round(r.now() - sent_at)}
                r.sink.timeline("transfer.warm.briefed", r.now(), played)
                # Recorded first: the join ends the caller's stream, and with it this task.
                r.sink.timeline("call.transferred", r.now(), {"to": destination, "mode": "warm"})
                self.joining = True
                # Shielded: the join's first half (Telnyx's streaming_stop) ends this call's
                # session, which cancels this task; the second half must still be sent.
                await asyncio.shield(leg.join())
                return step, token
        except asyncio.CancelledError:
            if not self.joining:  # the caller hung up meanwhile: the new leg goes too
                _detached(leg.drop())
            raise
        except (SwitchboardError, OSError, KeyError) as exc:
            self.joining = False
            step = GiveUp("failed")
            plan.failed()
            r.sink.timeline("transfer.warm.error", r.now(), {"error": str(exc)[:200]})
        finally:
            speaking.cancel()
        await leg.drop()
        return step, token

    async def _speak(self, text: str) -> Briefing:
        speak = self.options.speak
        pcm = None
        if speak is not None:
            try:
                pcm = await asyncio.wait_for(speak(text, BRIEFING_SPEC), 15.0)
            except TimeoutError:
                pcm = None
        return Briefing(text, _wav(pcm) if pcm else None)


_DETACHED: set[asyncio.Task[None]] = set()


def _detached(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to its end though the call's tasks are being cancelled."""
    task = asyncio.get_running_loop().create_task(coro)
    _DETACHED.add(task)
    task.add_done_callback(_DETACHED.discard)


def _wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(BRIEFING_SPEC.sample_rate)
        w.writeframes(pcm)
    return out.getvalue()


def _played_s(briefing: Briefing) -> float:
    """How long the briefing takes to play (the carrier's own voice: ~65 ms a character):
    what the join's backstop adds its slack to (``WarmPlan.briefing_sent``)."""
    if briefing.wav is None:
        return len(briefing.text) * 0.065
    return (len(briefing.wav) - 44) / 2 / BRIEFING_SPEC.sample_rate


class _HoldTimeline(CallSink):
    """The call's sink, with the hold sound's ``thinking.*`` entries named ``hold.*``."""

    def __init__(self, inner: CallSink) -> None:
        self.inner = inner

    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        self.inner.transcript(role, text, at_ms, interrupted)

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any]) -> None:
        self.inner.timeline(kind.replace("thinking.", "hold."), at_ms, data)

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        self.inner.turn_latency(turn, latency_ms)

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        self.inner.tool_call(result, at_ms)

    def usage(self, usage: Usage) -> None:
        self.inner.usage(usage)

    def provider_event(self, kind: ProviderEventType, at_ms: float) -> None:
        self.inner.provider_event(kind, at_ms)
