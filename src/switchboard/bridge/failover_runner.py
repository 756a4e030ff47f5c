"""A call's provider failover, with real I/O: the next provider connected with the call so far.

The decisions are :class:`~switchboard.bridge.failover.FailoverMonitor`'s (``bridge/failover.py``);
this module carries them out for one :class:`~switchboard.bridge.session.CallSession`:

* it feeds the monitor what the session sees (caller frames, provider events, tool results)
  and watches its timers;
* when the monitor says so (or the provider's events end, or it never connected), it creates
  the next provider of the agent's fallback list with the call's context — system prompt,
  tools, the nearest voice, and the conversation as the caller heard it (the transcript lines
  the bridge core recorded, agent lines cut at barge-in) — connects it, and hands it to the
  session, which then bridges it instead;
* caller audio of a turn the old provider never answered (it went silent, or the caller spoke
  during the gap) is replayed to the new one, so it answers that turn;
* a gap longer than ``filler_after_ms`` plays the offline voice's filler ("One moment,
  please.") through the bridge core, paced and interruptible like any reply;
* the timeline gets ``provider.failover`` (from, to, reason, gap ms), the metrics and the
  provider health (circuit breaker) hear of it through ``on_failover``/``on_connect``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from switchboard.audio import Framer
from switchboard.bridge.failover import FailoverMonitor, FailoverPolicy
from switchboard.bridge.sink import CallSink
from switchboard.flags import Flag
from switchboard.media import AudioSpec, Usage
from switchboard.providers.base import BaseProvider, SessionState, disconnect_quietly
from switchboard.providers.events import (
    AudioOutput,
    ErrorReport,
    FunctionCall,
    ProviderEvent,
    Reconnected,
    Reconnecting,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
)
from switchboard.providers.types import HistoryTurn
from switchboard.telephony.base import StreamStarted
from switchboard.tools import ToolResult

if TYPE_CHECKING:
    from switchboard.providers.events import ProviderEventType

__all__ = ["HeardTranscript", "ProviderFactory", "ProviderFailover"]

logger = logging.getLogger(__name__)

#: Creates provider ``name`` for this call with ``history``; ``greet``: it speaks the greeting.
ProviderFactory = Callable[[str, list[HistoryTurn], bool], BaseProvider]
#: Caller audio kept for a replay: frames since the agent last spoke (20 ms each, 15 s).
_REPLAY_FRAMES = 750


class CallSession(Protocol):
    """What a failover needs of the call's session (``bridge/session.py``'s ``CallSession``)."""

    provider: BaseProvider
    started: StreamStarted
    sink: CallSink
    log: logging.LoggerAdapter[Any]

    def now(self) -> float: ...

    async def replace_provider(self, provider: BaseProvider) -> None: ...

    async def send_caller_audio(self, payload: bytes) -> None: ...

    async def play_agent_audio(self, frames: list[bytes], text: str) -> None: ...

    def spawn(self, coro: Awaitable[Any], what: str) -> None: ...


class HeardTranscript(CallSink):
    """A sink in front of the call's sinks that keeps what a failover carries over: the
    transcript as recorded (as the caller heard it) and the usage of each provider."""

    def __init__(self, inner: CallSink, provider: str) -> None:
        self.inner = inner
        self.provider = provider
        self.lines: list[HistoryTurn] = []
        self.usage_by_provider: dict[str, Usage] = {}

    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        if text:
            self.lines.append(HistoryTurn("assistant" if role == "agent" else "user", text))
        self.inner.transcript(role, text, at_ms, interrupted)

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any]) -> None:
        self.inner.timeline(kind, at_ms, data)

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        self.inner.turn_latency(turn, latency_ms)

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        self.inner.tool_call(result, at_ms)

    def usage(self, usage: Usage) -> None:
        before = self.usage_by_provider.get(self.provider, Usage())
        self.usage_by_provider[self.provider] = before + usage
        self.inner.usage(usage)

    def provider_event(self, kind: ProviderEventType, at_ms: float) -> None:
        self.inner.provider_event(kind, at_ms)


class ProviderFailover:
    """Moves one call to its next provider when its provider fails (module docstring).

    Args:
        policy: the call's fallback list and timings.
        provider: the name of the call's provider now.
        make: creates a fallback provider for the call (``ProviderFactory``).
        heard: the call's :class:`HeardTranscript` (also the session's sink).
        filler_audio: the offline voice (``bridge/apology.py``'s ``apology_audio``), or None.
        on_failover: ``(from, to, reason, gap_ms)`` once a fallback took the call (metrics).
        on_connect: ``(provider, ok, reason)`` after each connect attempt (provider health).
        usable: whether a fallback may be tried now (its circuit breaker is not open).
    """

    def __init__(
        self,
        *,
        policy: FailoverPolicy,
        provider: str,
        make: ProviderFactory,
        heard: HeardTranscript,
        filler_audio: Callable[[str, AudioSpec], Awaitable[bytes | None]] | None = None,
        on_failover: Callable[[str, str, str, float], None] | None = None,
        on_connect: Callable[[str, bool, str], None] | None = None,
        usable: Callable[[str], bool] | None = None,
    ) -> None:
        self.policy = policy
        self.provider_name = provider
        self.monitor = FailoverMonitor(policy)
        self.heard = heard
        self._make = make
        self._filler_audio = filler_audio
        self._on_failover = on_failover
        self._on_connect = on_connect
        self._usable = usable
        self._remaining = list(policy.fallback)
        self._lock = asyncio.Lock()
        self._poke = Flag()
        #: when the watch plans to look next (None: not until poked)
        self._wake_at: float | None = None
        self._recent: deque[tuple[bytes, bool]] = deque(maxlen=_REPLAY_FRAMES)
        self.switching = False
        self._replayed = False  # caller audio was replayed; its echo of speech is no barge-in
        #: ``(from, to, reason, gap_ms)`` of each failover of the call
        self.failovers: list[tuple[str, str, str, float]] = []

    # -- what the session sees -------------------------------------------------------------------
    def caller_frame(self, payload: bytes, voiced: bool, now: float) -> None:
        self.monitor.caller_frame(voiced, now)
        self._recent.append((payload, voiced))
        self._nudge(now)

    def provider_event(self, event: ProviderEvent, now: float) -> None:
        monitor = self.monitor
        match event.data:
            case AudioOutput():
                monitor.agent_audio(now)
                self._recent.clear()  # the caller's turn before this is answered
                self._nudge(now)
                return
            case SpeechStopped():
                monitor.caller_turn_ended(now)
            case FunctionCall():
                monitor.tool_called(now)
            case ResponseDone():
                monitor.reply_done(now)
            case Reconnecting():
                monitor.connection_lost(now)
            case Reconnected():
                monitor.connection_restored(now)
            case ErrorReport(fatal=True):
                monitor.fatal_error(now)
            case _:
                return
        self._poke.set()

    def _nudge(self, now: float) -> None:
        """Wake the watch for what comes with every frame only when it must look sooner than
        it planned: waking it per caller frame and per agent audio delta was a task switch
        every 20 ms per call (with a timer each), a few per cent of a core at 100 calls."""
        monitor = self.monitor
        at = monitor.next_check_at()
        if (at is not None and (self._wake_at is None or at < self._wake_at)) or monitor.due(
            now
        ) is not None:
            self._poke.set()

    def hides(self, event: ProviderEvent) -> bool:
        """Whether the session should not act on ``event``: the new provider hearing the
        replayed caller audio start is not the caller speaking over the filler now."""
        match event.data:
            case SpeechStarted():
                return self._replayed
            case AudioOutput() | ResponseDone() | FunctionCall():
                self._replayed = False
        return False

    def tool_result_sent(self, now: float) -> None:
        self.monitor.tool_result_sent(now)
        self._poke.set()

    # -- when -------------------------------------------------------------------------------------
    async def watch(self, session: CallSession) -> None:
        """Fail over whenever the monitor says so, until the call ends (one of its loops)."""
        self._report(self.provider_name, True, "")  # connected and bridged (a probe succeeded)
        if self._filler_audio is not None and self.policy.filler_text:  # ready when needed
            session.spawn(
                self._filler_audio(self.policy.filler_text, session.started.audio), "filler"
            )
        while True:
            now = session.now()
            reason = self.monitor.due(now)
            if reason is not None and self._remaining and not self.switching:
                await self.switch(session, reason)
                continue
            at = self._wake_at = self.monitor.next_check_at()
            self._poke.clear()
            timeout = None if at is None else max(0.01, (at - now) / 1000.0)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the poke is set (a caller frame every 20 ms), and this loop would
            # outlive the call — the session then never ends, nor hangs up at the carrier
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._poke.wait()

    async def provider_gone(self, session: CallSession, provider: BaseProvider) -> bool:
        """The events of ``provider`` ended: True once another provider bridges the call."""
        if session.provider is provider:
            failed = provider.state is SessionState.FAILED
            self.monitor.events_ended(failed=failed, now=session.now())
            await self.switch(session, "provider_failed" if failed else "provider_closed")
        return session.provider is not provider

    async def start_over(self, session: CallSession) -> bool:
        """The call's provider did not connect at the start: True once a fallback did."""
        self._report(self.provider_name, False, "connect_failed")
        return await self.switch(session, "connect_failed", greet=True)

    # -- how --------------------------------------------------------------------------------------
    async def switch(self, session: CallSession, reason: str, *, greet: bool = False) -> bool:
        """Move the call to the next provider that connects; False when none did."""
        old = session.provider
        async with self._lock:
            if session.provider is not old:
                return True  # another trigger moved the call meanwhile
            now = session.now()
            gap_start = self.monitor.lost_since or self.monitor.reply_due_since or now
            if reason != "connect_failed":
                self._report(self.provider_name, False, reason)
            self.switching = True
            session.spawn(self._filler(session, gap_start), "filler")
            try:
                return await self._switch(session, old, reason, gap_start, greet)
            finally:
                self.switching = False

    async def _switch(
        self, session: CallSession, old: BaseProvider, reason: str, gap_start: float, greet: bool
    ) -> bool:
        history = list(self.heard.lines)
        while self._remaining:
            name = self._remaining.pop(0)
            if self._usable is not None and not self._usable(name):
                session.log.info("failover: %s skipped (circuit open)", name)
                continue
            provider = await self._connect(session, name, history, greet)
            if provider is None:
                continue
            gap_ms = session.now() - gap_start
            session.log.warning(
                "failover %s → %s (%s) after a %.0f ms gap",
                self.provider_name,
                name,
                reason,
                gap_ms,
            )
            await session.replace_provider(provider)
            session.sink.timeline(
                "provider.failover",
                session.now(),
                {"from": self.provider_name, "to": name, "reason": reason, "gap_ms": round(gap_ms)},
            )
            self.failovers.append((self.provider_name, name, reason, gap_ms))
            if self._on_failover is not None:
                self._on_failover(self.provider_name, name, reason, gap_ms)
            self.provider_name = self.heard.provider = name
            self.monitor.reset(session.now())
            await self._replay(session, provider)
            session.spawn(disconnect_quietly(old), "close the failed provider")
            return True
        return False

    async def _connect(
        self, session: CallSession, name: str, history: list[HistoryTurn], greet: bool
    ) -> BaseProvider | None:
        timeout_s = self.policy.connect_timeout_ms / 1000.0 if greet else 5.0
        provider: BaseProvider | None = None
        try:
            provider = self._make(name, history, greet)
            await asyncio.wait_for(provider.connect(), timeout_s)
            assert provider is not None
        except Exception as exc:
            session.log.warning("failover: %s did not connect: %r", name, exc)
            self._report(name, False, "connect_failed")
            with contextlib.suppress(Exception):
                await disconnect_quietly(provider)
            return None
        self._report(name, True, "")
        return provider

    def _report(self, name: str, ok: bool, reason: str) -> None:
        if self._on_connect is not None:
            self._on_connect(name, ok, reason)

    async def _replay(self, session: CallSession, provider: BaseProvider) -> None:
        """Caller audio of a turn nobody answered goes to the new provider (it answers it)."""
        frames = list(self._recent)
        if not any(voiced for _, voiced in frames):
            return
        first = next(i for i, (_, voiced) in enumerate(frames) if voiced)
        start = max(0, first - 15)  # 300 ms before the voice: the provider's VAD needs a lead
        self._replayed = True
        for payload, _ in frames[start:]:
            await session.send_caller_audio(payload)

    async def _filler(self, session: CallSession, gap_start: float) -> None:
        """The offline voice's filler, once the gap is longer than ``filler_after_ms``."""
        if self._filler_audio is None or not self.policy.filler_text:
            return
        spec = session.started.audio
        wait_ms = gap_start + self.policy.filler_after_ms - session.now()
        if wait_ms > 0:  # a short gap so far: only if the switch is still under way then
            await asyncio.sleep(wait_ms / 1000.0)
            if not self.switching:
                return
        audio = await self._filler_audio(self.policy.filler_text, spec)  # cached by then
        if not audio:
            return
        framer = Framer(spec)
        await session.play_agent_audio(framer.push(audio) + framer.flush(), self.policy.filler_text)
