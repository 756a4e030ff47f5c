"""The per-provider circuit breaker, with the clock passed in."""

from __future__ import annotations

from switchboard.providers.health import ProviderHealth


def test_failures_in_the_window_open_the_breaker_then_one_probe_goes() -> None:
    health = ProviderHealth(failures=3, window_s=60, cooldown_s=30)
    for t in (0, 10, 20):
        assert health.allow("openai", t)
        health.failure("openai", t, "stall")
    assert health.state("openai", 21) == "open"
    assert not health.allow("openai", 49)
    snap = health.snapshot("openai", 25)
    assert snap == {
        "state": "open",
        "recent_failures": 0,
        "retry_in_s": 25.0,
        "last_failure": "stall",
    }
    assert health.state("openai", 50) == "half_open"
    assert health.allow("openai", 50)  # the probe
    assert not health.allow("openai", 51)  # only one
    health.success("openai", 52)
    assert health.state("openai", 52) == "closed"
    assert health.allow("openai", 53)


def test_a_failed_probe_opens_it_again() -> None:
    health = ProviderHealth(failures=1, window_s=60, cooldown_s=30)
    health.failure("gemini", 0)
    assert health.allow("gemini", 30)
    health.failure("gemini", 31, "connect_failed")
    assert health.state("gemini", 40) == "open"
    assert health.state("gemini", 61) == "half_open"


def test_failures_outside_the_window_do_not_add_up() -> None:
    health = ProviderHealth(failures=3, window_s=60, cooldown_s=30)
    for t in (0, 100, 200):
        health.failure("deepgram", t)
    assert health.state("deepgram", 201) == "closed"
    assert health.snapshot("deepgram", 201)["recent_failures"] == 1


def test_a_probe_that_never_reports_is_replaced_after_a_cool_down() -> None:
    health = ProviderHealth(failures=1, window_s=60, cooldown_s=30)
    health.failure("openai", 0)
    assert health.allow("openai", 30)  # the probe's caller hangs up before it reports
    assert not health.allow("openai", 45)
    assert health.allow("openai", 60)


def test_other_providers_are_untouched() -> None:
    health = ProviderHealth(failures=1)
    health.failure("openai", 0)
    assert health.allow("gemini", 0)
    assert health.snapshot("gemini", 0)["state"] == "closed"
