"""Who receives which event, URL redaction, and the retry schedule (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from switchboard.errors import ConfigError
from switchboard.integrations.events import EVENT_TYPES, EventRoutes, WebhookTarget, redact_url
from switchboard.integrations.retry import RetryPolicy

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_routes_send_each_event_to_the_urls_that_want_it() -> None:
    server = WebhookTarget.server_wide("https://hooks.example.com/all", [])
    agent = WebhookTarget(url="https://crm.example.com/x", events=("call.ended", "call.analyzed"))
    routes = EventRoutes.of(server, agent, None)
    assert routes.urls("call.started") == ("https://hooks.example.com/all",)
    assert routes.urls("call.ended") == (
        "https://hooks.example.com/all",
        "https://crm.example.com/x",
    )
    op = routes.event("call_1", "call.ended", {"x": 1}, with_record=True)
    assert op is not None
    assert (op.type, dict(op.data), op.with_record) == (
        "call.ended",
        {"call_id": "call_1", "x": 1},
        True,
    )
    assert op.event_id.startswith("evt_")
    assert EventRoutes.of(agent).event("call_1", "call.started") is None
    same = EventRoutes.of(server, WebhookTarget(url="https://hooks.example.com/all"))
    assert same.urls("tool.failed") == ("https://hooks.example.com/all",)  # each URL once


def test_targets_refuse_unknown_events_and_non_http_urls() -> None:
    assert WebhookTarget.server_wide(None, ["call.ended"]) is None
    with pytest.raises(ConfigError, match=r"call\.endd"):
        WebhookTarget.server_wide("https://h.example.com/", ["call.endd"])
    with pytest.raises(ValidationError):
        WebhookTarget(url="ftp://h.example.com/x")
    with pytest.raises(ValidationError):
        WebhookTarget.model_validate({"url": "https://h.example.com/x", "events": ["nope"]})
    assert EVENT_TYPES[0] == "call.started" and "tool.failed" in EVENT_TYPES


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h.example.com/hook?token=abc", "https://h.example.com/hook?…"),
        ("https://user:pw@h.example.com/a/b", "https://h.example.com/a/b"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
        ("http://h.example.com/p#frag", "http://h.example.com/p"),
    ],
)
def test_urls_are_shown_without_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_backoff_doubles_to_its_cap_and_gives_up_at_the_limit() -> None:
    policy = RetryPolicy(initial_s=5, max_delay_s=3600, give_up_after_s=86400, jitter=0.0)
    assert [policy.delay_s(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert policy.delay_s(20) == 3600 and policy.delay_s(10_000) == 3600
    at = policy.next_attempt(created_at=T0, failures=3, now=T0 + timedelta(seconds=100))
    assert at == T0 + timedelta(seconds=120)
    late = T0 + timedelta(hours=23, minutes=30)
    assert policy.next_attempt(created_at=T0, failures=30, now=late) is None
    jittery = RetryPolicy(initial_s=10, max_delay_s=10, jitter=0.5)
    assert jittery.delay_s(1, random=0.0) == 10 and jittery.delay_s(1, random=0.999) > 5
    with pytest.raises(ValueError, match="initial_s"):
        RetryPolicy(initial_s=10, max_delay_s=1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.0)


def test_a_day_of_retries_is_about_thirty_attempts() -> None:
    """The default schedule: 5 s doubling to hourly, for 24 h."""
    policy, now, failures = RetryPolicy(jitter=0.0), T0, 0
    while (at := policy.next_attempt(created_at=T0, failures=failures + 1, now=now)) is not None:
        now, failures = at, failures + 1
    assert 25 <= failures <= 35
    assert now - T0 <= timedelta(hours=24)
