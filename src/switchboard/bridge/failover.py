"""When a call moves to its next provider, and which one: pure decisions, no I/O.

Theory of operation
-------------------
A call's provider can fail in four ways the caller would hear as silence. The session
(``bridge/session.py``) feeds a :class:`FailoverMonitor` what happens — caller frames (voiced
or not, from the bridge's own detector), agent audio, the provider's speech and tool events,
a lost socket and its return, fatal errors, the end of its events — and asks it, at each
event and at the wakeup it names, whether to fail over now and why:

``connect_failed``
    the provider did not connect at the start of the call (decided by the session: it gives
    each attempt at most ``connect_timeout_ms``, so the caller hears no more than about 2 s
    of silence before the next provider answers).
``lost``
    the socket was lost (``session.reconnecting``) and neither reconnect nor resumption was
    back within ``failover_after_ms``.
``fatal_error`` / ``provider_failed`` / ``provider_closed``
    a fatal error event, or the provider's events ended (it gave up, or closed).
``stall``
    a reply is due — the caller's turn ended (a run of voice at our socket then quiet, or the
    provider's end of speech), or a tool result was sent — and no agent audio came within
    ``stall_timeout_ms``. An open socket that stays silent must not leave the caller in
    silence.

Which provider comes next is :func:`fallback_order`: the agent's ``fallback`` list, or the
selection strategy's order after the chosen provider, restricted to the configured ones, with
``local`` last when its extra is installed. New calls skip a provider whose circuit breaker
is open (``providers/health.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

__all__ = ["FailoverMonitor", "FailoverPolicy", "fallback_order"]


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    """A call's failover tunables (times in milliseconds).

    Attributes:
        fallback: the providers to move to, in order (empty: no failover).
        failover_after_ms: a lost socket not back within this long is failed over.
        stall_timeout_ms: a due reply with no first audio within this long is failed over.
        connect_timeout_ms: at the call's start, each provider's connect is given this long.
        filler_after_ms: a failover gap longer than this plays ``filler_text`` to the caller.
        filler_text: what the offline voice says while the next provider connects.
        min_voice_ms: a run of caller voice at least this long is a turn (shorter: a noise).
    """

    fallback: tuple[str, ...] = ()
    failover_after_ms: float = 3000.0
    stall_timeout_ms: float = 5000.0
    connect_timeout_ms: float = 1500.0
    filler_after_ms: float = 1000.0
    filler_text: str = "One moment, please."
    min_voice_ms: float = 400.0


def fallback_order(
    chosen: str,
    *,
    explicit: Sequence[str] | None,
    strategy_order: Sequence[str],
    configured: Collection[str],
    local_available: bool,
) -> tuple[str, ...]:
    """The providers a call of ``chosen`` fails over to, in order.

    Args:
        chosen: the call's provider (never in the result).
        explicit: the agent's ``fallback`` list, used as given (minus ``chosen`` and repeats)
            when set; an empty list turns failover off.
        strategy_order: the selection strategy's provider order.
        configured: providers whose keys are set (the default order keeps only these).
        local_available: the ``local`` extra is installed (the default order ends with it).
    """
    if explicit is not None:
        return tuple(dict.fromkeys(p for p in explicit if p != chosen))
    order = list(strategy_order)
    after = order[order.index(chosen) + 1 :] if chosen in order else order
    before = order[: order.index(chosen)] if chosen in order else []
    names = [p for p in after + before if p != "local" and p in configured]
    if local_available and chosen != "local":
        names.append("local")
    return tuple(dict.fromkeys(p for p in names if p != chosen))


class FailoverMonitor:
    """Watches one provider of one call for the triggers in the module docstring.

    Every input takes ``now`` in milliseconds (any monotonic scale); :meth:`due` says whether
    to fail over and why, :meth:`next_check_at` when to ask again if nothing else happens.
    Call :meth:`reset` when the call moves to a new provider.
    """

    def __init__(self, policy: FailoverPolicy) -> None:
        self.policy = policy
        self.reset(0.0)

    def reset(self, now: float) -> None:
        """A new provider serves the call from ``now``: nothing is due, nothing is lost."""
        self._reply_due_at: float | None = None
        self._lost_at: float | None = None
        self._immediate: str | None = None
        self._voice_start: float | None = None  # the current run of caller voice
        self._voice_end: float | None = None
        self._started = now

    # -- inputs ----------------------------------------------------------------------------------
    def caller_frame(self, voiced: bool, now: float) -> None:
        """A caller frame reached our socket (``voiced`` by the bridge's detector)."""
        if voiced:
            if self._voice_start is None:
                self._voice_start = now
            self._voice_end = now
            if now - self._voice_start >= self.policy.min_voice_ms:
                self._reply_due_at = None  # the caller is still talking: nothing due yet
            return
        start, end = self._voice_start, self._voice_end
        if start is not None and end is not None and now - end >= 100.0:
            # a pause of 100 ms ends the run; long enough, it was a turn awaiting a reply
            if end - start >= self.policy.min_voice_ms:
                self._reply_due_at = end
            self._voice_start = self._voice_end = None

    def caller_turn_ended(self, now: float) -> None:
        """The provider reported the caller's end of speech: a reply is due."""
        if self._reply_due_at is None:
            self._reply_due_at = now

    def tool_called(self, now: float) -> None:
        """The model called a tool: it waits for us, not we for it."""
        self._reply_due_at = None

    def tool_result_sent(self, now: float) -> None:
        """A tool result went back to the model: its reply is due."""
        self._reply_due_at = now

    def agent_audio(self, now: float) -> None:
        """Agent audio arrived: whatever was due has started."""
        self._reply_due_at = None

    def reply_done(self, now: float) -> None:
        """The provider finished a reply (maybe with nothing to say): nothing is due."""
        self._reply_due_at = None

    def connection_lost(self, now: float) -> None:
        """The provider's socket is gone; it is reconnecting or resuming."""
        if self._lost_at is None:
            self._lost_at = now

    def connection_restored(self, now: float) -> None:
        self._lost_at = None

    def fatal_error(self, now: float) -> None:
        """The provider reported an error it cannot recover from."""
        self._immediate = self._immediate or "fatal_error"

    def events_ended(self, *, failed: bool, now: float) -> None:
        """The provider's events ended (it gave up reconnecting, or closed)."""
        self._immediate = self._immediate or ("provider_failed" if failed else "provider_closed")

    # -- decisions -------------------------------------------------------------------------------
    def due(self, now: float) -> str | None:
        """The reason to fail over now, or None."""
        if self._immediate is not None:
            return self._immediate
        policy = self.policy
        if self._lost_at is not None and now - self._lost_at >= policy.failover_after_ms:
            return "lost"
        if self._reply_due_at is not None and now - self._reply_due_at >= policy.stall_timeout_ms:
            return "stall"
        return None

    def next_check_at(self) -> float | None:
        """When a timer trigger falls due if nothing else happens first (None: none runs)."""
        times = []
        if self._lost_at is not None:
            times.append(self._lost_at + self.policy.failover_after_ms)
        if self._reply_due_at is not None:
            times.append(self._reply_due_at + self.policy.stall_timeout_ms)
        return min(times) if times else None

    @property
    def lost_since(self) -> float | None:
        """When the socket was lost (the failover's gap starts there), or None."""
        return self._lost_at

    @property
    def reply_due_since(self) -> float | None:
        """Since when a reply is due (a stall's gap starts there), or None."""
        return self._reply_due_at
