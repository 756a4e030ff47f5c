"""Per-provider health for new calls: a circuit breaker, pure (the caller passes the clock).

Theory of operation, per provider::

    closed ──``failures`` failures within ``window_s``──▶ open (new calls skip it)
      ▲                                                     │ ``cooldown_s`` later
      │ the probe call's provider connects and serves       ▼
      └──────────────────────────────────────────── half-open: ONE new call may use it (the
                     a failure while half-open ─▶ open again    probe); others still skip it

A failure is a provider that did not connect for a call, or that a call failed over from
mid-call. ``GET /v1/providers`` shows each provider's state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["BreakerState", "ProviderHealth"]


@dataclass(slots=True)
class BreakerState:
    """One provider's breaker (see the module docstring)."""

    failures: deque[float] = field(default_factory=deque)
    opened_at: float | None = None
    probing: bool = False
    probe_at: float = 0.0
    last_reason: str | None = None


class ProviderHealth:
    """Circuit breakers of every provider, for choosing the providers of new calls.

    Args:
        failures: failures within ``window_s`` that open a provider's breaker.
        window_s: the window failures are counted in.
        cooldown_s: how long an open breaker skips its provider before one probe call.
    """

    def __init__(self, *, failures: int = 3, window_s: float = 60.0, cooldown_s: float = 30.0):
        self.threshold = failures
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self._states: dict[str, BreakerState] = {}

    def _state(self, provider: str) -> BreakerState:
        return self._states.setdefault(provider, BreakerState())

    def state(self, provider: str, now: float) -> str:
        """``closed``, ``open`` or ``half_open`` (cool-down over: a probe may go)."""
        breaker = self._states.get(provider)
        if breaker is None or breaker.opened_at is None:
            return "closed"
        return "open" if now - breaker.opened_at < self.cooldown_s else "half_open"

    def allow(self, provider: str, now: float) -> bool:
        """May a new call use ``provider`` now? A half-open breaker lets one probe through."""
        state = self.state(provider, now)
        if state == "closed":
            return True
        breaker = self._state(provider)
        # a probe that never reported (its caller hung up first) is replaced after a cool-down
        stale = breaker.probing and now - breaker.probe_at >= self.cooldown_s
        if state == "half_open" and (not breaker.probing or stale):
            breaker.probing, breaker.probe_at = True, now
            return True
        return False

    def failure(self, provider: str, now: float, reason: str = "") -> None:
        """``provider`` failed a call (did not connect, or was failed over from)."""
        breaker = self._state(provider)
        breaker.last_reason = reason or breaker.last_reason
        if breaker.probing or breaker.opened_at is not None:
            breaker.opened_at, breaker.probing = now, False  # the probe failed: cool down again
            return
        breaker.failures.append(now)
        while breaker.failures and now - breaker.failures[0] > self.window_s:
            breaker.failures.popleft()
        if len(breaker.failures) >= self.threshold:
            breaker.opened_at = now
            breaker.failures.clear()

    def success(self, provider: str, now: float) -> None:
        """``provider`` connected and served a call: a probe closes its breaker."""
        breaker = self._states.get(provider)
        if breaker is not None and breaker.probing:
            self._states[provider] = BreakerState()

    def snapshot(self, provider: str, now: float) -> dict[str, object]:
        """What ``GET /v1/providers`` shows of ``provider``'s breaker."""
        breaker = self._states.get(provider) or BreakerState()
        state = self.state(provider, now)
        retry = (
            max(0.0, breaker.opened_at + self.cooldown_s - now)
            if state == "open" and breaker.opened_at is not None
            else None
        )
        recent = [t for t in breaker.failures if now - t <= self.window_s]
        return {
            "state": state,
            "recent_failures": len(recent),
            "retry_in_s": round(retry, 1) if retry is not None else None,
            "last_failure": breaker.last_reason,
        }
