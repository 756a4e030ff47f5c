"""The sliding-window rate limiter (pure: the tests pass the clock)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.ratelimit import FailureThrottle, SlidingWindowLimiter


def test_allows_up_to_the_limit_then_says_how_long_to_wait() -> None:
    limiter = SlidingWindowLimiter(3, 60.0)
    assert [limiter.hit("t", at) for at in (0.0, 10.0, 20.0)] == [None, None, None]
    assert limiter.remaining("t", 20.0) == 0
    assert limiter.hit("t", 30.0) == pytest.approx(30.0)  # the first event leaves at 60
    assert limiter.hit("t", 59.5) == pytest.approx(0.5)


def test_refused_events_are_not_counted() -> None:
    limiter = SlidingWindowLimiter(1, 10.0)
    assert limiter.hit("t", 0.0) is None
    for at in (1.0, 2.0, 9.0):
        assert limiter.hit("t", at) is not None
    assert limiter.hit("t", 10.0) is None  # only the first event was in the window


def test_the_window_slides_instead_of_resetting() -> None:
    limiter = SlidingWindowLimiter(2, 60.0)
    assert limiter.hit("t", 58.0) is None
    assert limiter.hit("t", 59.0) is None
    # A fixed per-minute window would reset at 60 and allow two more here.
    assert limiter.hit("t", 61.0) == pytest.approx(57.0)
    assert limiter.hit("t", 118.0) is None
    assert limiter.remaining("t", 118.0) == 0


def test_keys_are_limited_separately() -> None:
    limiter = SlidingWindowLimiter(1, 60.0)
    assert limiter.hit("a", 0.0) is None
    assert limiter.hit("a", 1.0) is not None
    assert limiter.hit("b", 1.0) is None
    assert limiter.remaining("c", 1.0) == 1


def test_key_memory_is_bounded() -> None:
    limiter = SlidingWindowLimiter(1, 60.0, max_keys=2)
    for key in ("a", "b", "c"):
        assert limiter.hit(key, 0.0) is None
    assert limiter.remaining("a", 0.0) == 1  # forgotten: the least recently used
    assert limiter.remaining("c", 0.0) == 0


@pytest.mark.parametrize(("limit", "window"), [(0, 60.0), (1, 0.0), (1, -1.0)])
def test_rejects_a_limit_that_bounds_nothing(limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="limit"):
        SlidingWindowLimiter(limit, window)


def test_a_source_is_throttled_after_the_limit_of_failures_until_the_oldest_leaves() -> None:
    throttle = FailureThrottle(3, 60.0)
    for at in (0.0, 10.0):
        throttle.failed("203.0.113.9", at)
    assert throttle.blocked("203.0.113.9", 20.0) is None
    throttle.failed("203.0.113.9", 20.0)
    assert throttle.blocked("203.0.113.9", 21.0) == pytest.approx(39.0)
    assert throttle.blocked("198.51.100.1", 21.0) is None  # other sources are not affected
    assert throttle.blocked("203.0.113.9", 60.0) is None  # the failure at 0 left the window


@given(
    st.lists(st.floats(0.0, 100.0), max_size=30).map(sorted),
    st.integers(1, 5),
    st.floats(0.5, 50.0),
    st.floats(0.0, 200.0),
)
def test_throttled_exactly_when_limit_failures_are_in_the_window(
    failures: list[float], limit: int, window: float, probe: float
) -> None:
    throttle = FailureThrottle(limit, window)
    counted: list[float] = []
    for at in failures:
        if sum(1 for t in counted if t > at - window) < limit:
            counted.append(at)  # beyond the limit a failure is not kept (it cannot matter)
        throttle.failed("s", at)
    if probe < (failures[-1] if failures else 0.0):
        return  # the clock does not run backwards
    inside = [t for t in counted if t > probe - window]
    wait = throttle.blocked("s", probe)
    if len(inside) >= limit:
        assert wait is not None and 0.0 <= wait <= window
        assert throttle.blocked("s", probe + wait + 1e-6) is None or wait == 0.0
    else:
        assert wait is None
