"""A sliding-window rate limiter (pure: the caller passes the clock).

Used to bound what spends the owner's money per API token (``POST /v1/calls``): at most
``limit`` events in any ``window_s`` seconds per key. The window slides: each key keeps the
times of its events inside the last window, so a burst at the end of one minute and another at
the start of the next cannot add up to twice the limit, as they can with fixed windows.

State lives in this process. Several workers each keep their own windows, so the bound across a
deployment is ``limit`` × workers; a shared implementation (Redis) can follow the same
``hit`` contract.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """At most ``limit`` events per ``window_s`` seconds for each key.

    Args:
        limit: events allowed in any window (≥ 1).
        window_s: the window's length in seconds (> 0).
        max_keys: keys tracked at most; the least recently used key is forgotten beyond that,
            so unbounded key sets cannot exhaust memory (keys here are API tokens: few).

    Raises:
        ValueError: ``limit`` < 1 or ``window_s`` ≤ 0.
    """

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 10_000) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float) -> float | None:
        """Count one event for ``key`` at ``now`` (seconds, monotonic) if the limit allows it.

        Returns:
            None when the event is allowed (and counted); otherwise the seconds until it would
            be (the event is not counted).
        """
        events = self._events.pop(key, None) or deque()
        self._events[key] = events  # most recently used last
        horizon = now - self.window_s
        while events and events[0] <= horizon:
            events.popleft()
        if len(events) >= self.limit:
            return max(events[0] - horizon, 0.0)
        events.append(now)
        while len(self._events) > self.max_keys:
            del self._events[next(iter(self._events))]
        return None

    def remaining(self, key: str, now: float) -> int:
        """Events ``key`` may still have in the window ending at ``now``."""
        horizon = now - self.window_s
        return self.limit - sum(1 for t in self._events.get(key, ()) if t > horizon)
