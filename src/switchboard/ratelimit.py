"""Sliding-window rate limits (pure: the caller passes the clock).

Used to bound what spends the owner's money per API token (``POST /v1/calls``): at most
``limit`` events in any ``window_s`` seconds per key. The window slides: each key keeps the
times of its events inside the last window, so a burst at the end of one minute and another at
the start of the next cannot add up to twice the limit, as they can with fixed windows.

:class:`FailureThrottle` uses the same windows the other way round: it counts *failures* per
source (a client address that sent badly signed webhooks or media tokens), and a source with
``limit`` failures in the last ``window_s`` seconds is refused before its next request is even
checked, until its oldest failure leaves the window.

State lives in this process. Several workers each keep their own windows, so the bound across a
deployment is ``limit`` × workers; a shared implementation (Redis) can follow the same
``hit`` contract.
"""

from __future__ import annotations

from collections import deque

__all__ = ["FailureThrottle", "SlidingWindowLimiter"]


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

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may have another event, or None when it may now (not counted)."""
        horizon = now - self.window_s
        inside = [t for t in self._events.get(key, ()) if t > horizon]
        if len(inside) < self.limit:
            return None
        return max(inside[-self.limit] - horizon, 0.0)


class FailureThrottle:
    """Refuse a source once it failed ``limit`` checks in ``window_s`` seconds.

    The caller asks :meth:`blocked` before checking a request and reports each failed check
    with :meth:`failed`; passed checks are not counted, so a source that signs correctly is
    never throttled unless it also sends ``limit`` bad requests in a window.

    Args:
        limit: failures allowed in any window (≥ 1).
        window_s: the window's length in seconds (> 0).
        max_keys: sources tracked at most (the least recently failing is forgotten first).
    """

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 10_000) -> None:
        self._window = SlidingWindowLimiter(limit, window_s, max_keys=max_keys)

    @property
    def limit(self) -> int:
        return self._window.limit

    @property
    def window_s(self) -> float:
        return self._window.window_s

    def blocked(self, source: str, now: float) -> float | None:
        """Seconds until ``source`` may be checked again, or None when it may be now."""
        return self._window.retry_after(source, now)

    def failed(self, source: str, now: float) -> None:
        """Count one failed check by ``source`` (beyond the limit, nothing more is kept)."""
        self._window.hit(source, now)
