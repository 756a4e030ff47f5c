"""When to try a webhook delivery again (pure: the clock and the randomness are passed in).

Exponential backoff with jitter: attempt ``n`` (1 = the first failure) waits
``initial_s × 2^(n-1)``, capped at ``max_delay_s``, then scaled by a random factor in
``[1 - jitter, 1]`` so receivers that come back are not hit by every sender at once. An event is
given up once the next attempt would fall past ``give_up_after_s`` from the event's creation
(24 h by default, as Standard Webhooks senders commonly do): the delivery becomes ``failed``
and waits for a retry by hand (``POST /v1/webhooks/deliveries/{id}/retry``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff between delivery attempts.

    Attributes:
        initial_s: the wait after the first failed attempt.
        max_delay_s: the longest wait between two attempts.
        give_up_after_s: how long after its creation an event is still tried.
        jitter: the fraction of each wait that is random (0 waits exactly).
    """

    initial_s: float = 5.0
    max_delay_s: float = 3600.0
    give_up_after_s: float = 86400.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_delay_s < self.initial_s:
            raise ValueError("need 0 < initial_s <= max_delay_s")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")

    def delay_s(self, failures: int, random: float = 1.0) -> float:
        """The wait after ``failures`` failed attempts (``random`` in [0, 1) picks the jitter)."""
        exponent = min(max(failures, 1) - 1, 60)  # 2**60 s is past any cap; avoids overflow
        base = min(self.initial_s * 2.0**exponent, self.max_delay_s)
        return base * (1.0 - self.jitter * random)

    def next_attempt(
        self, *, created_at: datetime, failures: int, now: datetime, random: float = 1.0
    ) -> datetime | None:
        """When to try again after ``failures`` failed attempts, or None to give up."""
        at = now + timedelta(seconds=self.delay_s(failures, random))
        if at > created_at + timedelta(seconds=self.give_up_after_s):
            return None
        return at
