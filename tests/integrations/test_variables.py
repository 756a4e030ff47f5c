"""Per-call variables: what is accepted, how ``{{name}}`` is filled, and the agent of one call."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from switchboard.agents import Agent
from switchboard.integrations.variables import (
    MAX_TOTAL_BYTES,
    MAX_VALUE_CHARS,
    MAX_VARIABLES,
    CallVariables,
    check_variables,
    placeholders,
    render,
)


def test_names_and_string_values_are_accepted() -> None:
    given_ = {"customer_name": "Ada", "_id": "", "Order2": "A-1 {{x}}"}
    assert check_variables(given_) == given_


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (["a"], "must be an object"),
        ({"2fast": "x"}, "variable name '2fast'"),
        ({"has-dash": "x"}, "variable name 'has-dash'"),
        ({"a" * 65: "x"}, "at most 64 characters"),
        ({"n": 5}, "variable 'n' must be a string, not int"),
        ({"n": None}, "variable 'n' must be a string, not NoneType"),
        ({"n": "x" * (MAX_VALUE_CHARS + 1)}, "longer than 2000 characters"),
        ({f"v{i}": "x" for i in range(MAX_VARIABLES + 1)}, "at most 64 variables"),
        ({f"v{i}": "é" * 1000 for i in range(10)}, f"more than {MAX_TOTAL_BYTES} bytes"),
    ],
)
def test_what_is_refused_is_named_without_the_values(value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as caught:
        check_variables(value)
    message = str(caught.value)
    assert "xxxxx" not in message and "éé" not in message


def test_the_pydantic_type_checks_too() -> None:
    class Body(BaseModel):
        variables: CallVariables

    assert Body.model_validate({"variables": {"a": "1"}}).variables == {"a": "1"}
    with pytest.raises(ValidationError, match="valid string"):
        Body.model_validate({"variables": {"a": 1}})
    with pytest.raises(ValidationError, match="variable name '1a'"):
        Body.model_validate({"variables": {"1a": "x"}})


def test_placeholders_are_filled_once_and_unknown_ones_left_empty() -> None:
    text = "Hi {{ name }}, order {{order}} for {{name}}. {{missing}}{{ 2bad }} {not} {{}}"
    rendered = render(text, {"name": "Ada {{order}}", "order": "A1"})
    assert rendered.text == "Hi Ada {{order}}, order A1 for Ada {{order}}. {{ 2bad }} {not} {{}}"
    assert rendered.missing == ("missing",)
    assert placeholders(text) == ["name", "order", "missing"]


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(max_size=30)))
def test_a_value_is_inserted_as_it_is(variables: dict[str, str]) -> None:
    template = " | ".join(f"{{{{{name}}}}}" for name in variables)
    assert render(template, variables).text == " | ".join(variables.values())


def _agent(**fields: Any) -> Agent:
    base: dict[str, Any] = {
        "name": "support",
        "system_prompt": "You help {{customer_name}} in {{shop}}.",
        "greeting": "Hello {{customer_name}}!",
        "variables": {"shop": "the Paris shop", "customer_name": "there"},
    }
    return Agent.model_validate(base | fields)


def test_a_calls_variables_win_over_the_agents_defaults() -> None:
    agent, missing = _agent().with_variables({"customer_name": "Ada"})
    assert missing == ()
    assert agent.system_prompt == "You help Ada in the Paris shop."
    assert agent.greeting == "Hello Ada!"
    assert agent.variables == {"shop": "the Paris shop", "customer_name": "Ada"}
    default, _ = _agent().with_variables(None)
    assert default.greeting == "Hello there!"


def test_placeholders_without_a_variable_are_reported() -> None:
    agent, missing = _agent(variables={}).with_variables({"shop": "Lyon"})
    assert missing == ("customer_name",)
    assert agent.greeting == "Hello !"
    assert agent.system_prompt == "You help  in Lyon."


def test_agent_defaults_are_checked_at_load() -> None:
    with pytest.raises(ValidationError, match="valid string"):
        _agent(variables={"shop": 3})
