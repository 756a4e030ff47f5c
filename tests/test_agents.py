"""Agent profiles: loading, validation errors with key paths, routing, session config."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.agents import Agent, AgentBook, normalise_number
from switchboard.errors import ConfigError, ToolError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.providers.registry import ProviderType, Requirements

SALES = """
version: 1
agents:
  sales:
    numbers: ["+1 (555) 010-2000", "+15550102001"]
    system_prompt: You sell things.
    greeting: Sales, hello!
    voice: marin
    provider: openai
    model: gpt-realtime
    tools: [end_call, lookup_order]
    tool_modules: ["tests.tools.sample_user_tools"]
    limits: {max_call_seconds: 120, silence_timeout_s: 5, silence_hangup_s: 20}
    barge_in: false
    language: en-GB
    turn_detection: {type: server_vad, silence_duration_ms: 400}
    temperature: 0.7
  fallback:
    numbers: ["*"]
    system_prompt: You take messages.
    strategy: lowest_cost
    requirements: {function_calling: true}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(text, "utf-8")
    return path


def test_packaged_book_has_a_catch_all_receptionist() -> None:
    book = AgentBook.load()
    agent = book.route("+15559999999")
    assert agent is not None
    assert agent.name == "receptionist"
    assert book.default is agent
    assert "end_call" in agent.tools
    assert agent.http_tools == []  # the packaged receptionist calls Python tools only
    assert agent.tool_registry().names() == sorted(str(name) for name in agent.tools)


def test_routing_exact_then_catch_all(tmp_path: Path) -> None:
    book = AgentBook.load(write(tmp_path, SALES))
    assert book.names() == ["sales", "fallback"]
    assert len(book) == 2
    sales = book.route("+15550102000")
    assert sales is not None
    assert sales.name == "sales"
    assert book.route("+1 555 010 2001") is sales
    fallback = book.route("+447700900000")
    assert fallback is not None
    assert fallback.name == "fallback"
    assert book.get("sales") is sales
    assert book.get("nobody") is None


def test_no_catch_all_means_no_match() -> None:
    agent = Agent(name="only", numbers=["+15550000001"], system_prompt="x")
    book = AgentBook([agent])
    assert book.route("+15550000001") is agent
    assert book.route("+15550000002") is None


def test_session_config_and_tools(tmp_path: Path) -> None:
    sales = AgentBook.load(write(tmp_path, SALES)).get("sales")
    assert sales is not None
    assert sales.provider is ProviderType.OPENAI
    assert not sales.barge_in
    registry = sales.tool_registry()
    assert registry.names() == ["end_call", "lookup_order"]
    config = sales.session_config(AudioSpec(AudioFormat.ULAW, 8000), registry.schemas())
    assert config.model_id == "gpt-realtime"
    assert (config.audio_format, config.sample_rate) == (AudioFormat.ULAW, 8000)
    assert config.system_prompt == "You sell things."
    assert config.greeting == "Sales, hello!"
    assert (config.voice, config.language, config.temperature) == ("marin", "en-GB", 0.7)
    assert [t["name"] for t in config.tools] == ["end_call", "lookup_order"]
    assert config.extra == {"turn_detection": {"type": "server_vad", "silence_duration_ms": 400}}
    other = sales.session_config(AudioSpec(AudioFormat.PCM16, 24000), model_id="x")
    assert (other.model_id, other.tools) == ("x", [])


def test_requirements_include_strategy(tmp_path: Path) -> None:
    fallback = AgentBook.load(write(tmp_path, SALES)).get("fallback")
    assert fallback is not None
    assert fallback.provider_requirements == Requirements(
        function_calling=True, strategy="lowest_cost"
    )


def test_unknown_tool_name_is_reported() -> None:
    agent = Agent(name="a", system_prompt="x", tools=["end_call", "teleport"])
    with pytest.raises(ToolError, match="unknown tools teleport"):
        agent.tool_registry()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    system_prompt: x\n    colour: blue\n", "agents.bad.colour: Extra inputs"),
        ("    system_prompt: x\n    numbers: ['555-1234']\n", "agents.bad.numbers.0: Value error"),
        (
            "    system_prompt: x\n    limits: {max_call_seconds: 0}\n",
            "agents.bad.limits.max_call_seconds: Input should be greater than 0",
        ),
        (
            "    system_prompt: x\n    limits: {silence_timeout_s: 10, silence_hangup_s: 5}\n",
            "agents.bad.limits: Value error, silence_hangup_s must be longer",
        ),
        ("    system_prompt: x\n    provider: acme\n", "agents.bad.provider: Input should be"),
        (
            "    system_prompt: x\n    requirements: {speed: 11}\n",
            "agents.bad.requirements: Value error, unknown provider requirements: speed",
        ),
        ("    greeting: hi\n", "agents.bad.system_prompt: Field required"),
        ("    system_prompt: x\n    temperature: 3\n", "agents.bad.temperature"),
    ],
)
def test_errors_name_file_and_key_path(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, f"version: 1\nagents:\n  bad:\n{body}")
    with pytest.raises(ConfigError) as info:
        AgentBook.load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        AgentBook.load(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        AgentBook.load(write(tmp_path, "agents: [unclosed"))
    with pytest.raises(ConfigError, match="version: Input should be 1"):
        AgentBook.load(write(tmp_path, "version: 2\nagents: {}\n"))


def test_number_answered_twice(tmp_path: Path) -> None:
    text = """
agents:
  a: {numbers: ["+15550000001"], system_prompt: x}
  b: {numbers: ["+1 555 000 0001"], system_prompt: y}
"""
    with pytest.raises(ConfigError, match=r"agents\.b\.numbers: \+15550000001 is already answered"):
        AgentBook.load(write(tmp_path, text))


def test_normalise_number() -> None:
    assert normalise_number("+1 (555) 010-2000") == "+15550102000"
    assert normalise_number("+44.20.7946.0000") == "+442079460000"


DIALLING = """
version: 1
agents:
  desk:
    system_prompt: x
    directory: {Billing: "+1 555 010 0201", pbx: "SIP:Desk@PBX.example.com"}
    transfer_allow: ["+1415*", " sip:*@pbx.example.com "]
"""


def test_transfer_destinations_load_into_a_dial_plan(tmp_path: Path) -> None:
    agent = AgentBook.load(write(tmp_path, DIALLING)).get("desk")
    assert agent is not None
    assert agent.directory == {"Billing": "+15550100201", "pbx": "sip:desk@pbx.example.com"}
    assert agent.transfer_allow == ["+1415*", "sip:*@pbx.example.com"]
    plan = agent.dial_plan
    assert plan.names == ["billing", "pbx"]
    assert plan.check("billing").destination == "+15550100201"
    assert plan.check("+14155550100").allowed
    assert not plan.check("+88212345678").allowed


def test_an_agent_without_directory_or_allow_list_may_transfer_nowhere() -> None:
    plan = Agent(name="a", system_prompt="x", tools=["transfer_call"]).dial_plan
    assert plan.denies_all
    assert not plan.check("+14155550100").allowed


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "transfer_allow: ['*']",
            "agents.bad.transfer_allow.0: Value error, '*' would allow every destination",
        ),
        (
            "transfer_allow: ['+1 415 555 0100', '+1415']",
            "agents.bad.transfer_allow.1: Value error, '+1415' is not a full E.164 number; "
            "write '+1415*'",
        ),
        ("transfer_allow: [billing]", "agents.bad.transfer_allow.0: Value error, 'billing' is not"),
        (
            "directory: {sales: '555-0100'}",
            "agents.bad.directory.sales: Value error, '555-0100' is not a phone number in E.164",
        ),
        (
            "directory: {desk: 'sip:desk@pbx.example.com?X-Route=+882'}",
            "agents.bad.directory.desk: Value error, ",
        ),
    ],
)
def test_bad_transfer_destinations_are_config_errors(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path, f"version: 1\nagents:\n  bad:\n    system_prompt: x\n    {body}\n")
    with pytest.raises(ConfigError) as info:
        AgentBook.load(path)
    assert message in str(info.value)
