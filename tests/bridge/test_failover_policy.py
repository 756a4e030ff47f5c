"""An agent's failover as agents.yaml and the configured providers make it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.test_gateway import settings_for

from switchboard.agents import AgentBook
from switchboard.bridge.failover_wiring import failover_policy, local_available
from switchboard.errors import ConfigError
from switchboard.gateway import Gateway

YAML = """
version: 1
agents:
  desk:
    numbers: ["*"]
    system_prompt: You answer the phone.
    provider: openai
    fallback: [gemini, deepgram, local]
    limits: {failover_after_s: 2, stall_timeout_s: 4}
  plain:
    numbers: ["+15550100000"]
    system_prompt: You answer the phone.
    provider: openai
"""


def book(tmp_path: Path, text: str) -> AgentBook:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    return AgentBook.load(path)


def test_the_agents_fallback_and_timings(tmp_path: Path) -> None:
    agents = book(tmp_path, YAML)
    gateway = Gateway.build(settings_for(tmp_path, OPENAI_API_KEY="sk-x", GEMINI_API_KEY="g-x"))
    desk = agents.get("desk")
    assert desk is not None
    policy = failover_policy(gateway, desk, "openai")
    assert policy.fallback == ("gemini", "deepgram", "local")  # as given, configured or not
    assert (policy.failover_after_ms, policy.stall_timeout_ms) == (2000.0, 4000.0)


def test_the_default_is_the_strategys_order_among_configured_providers(tmp_path: Path) -> None:
    agents = book(tmp_path, YAML)
    gateway = Gateway.build(
        settings_for(tmp_path, OPENAI_API_KEY="sk-x", GEMINI_API_KEY="g-x", DEEPGRAM_API_KEY=None)
    )
    plain = agents.get("plain")
    assert plain is not None
    policy = failover_policy(gateway, plain, "openai")
    local = ("local",) if local_available() else ()
    assert policy.fallback == ("gemini", *local)  # balanced: gemini, openai, deepgram, local
    assert (policy.failover_after_ms, policy.stall_timeout_ms) == (3000.0, 5000.0)


def test_an_unknown_fallback_provider_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agents\.desk\.fallback\.1"):
        book(tmp_path, YAML.replace("[gemini, deepgram, local]", "[gemini, watson]"))
