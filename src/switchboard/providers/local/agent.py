"""The local agent's script: intents, slots and reply templates, loaded from YAML.

The packaged ``agent.yaml`` (a receptionist) shows every feature; an operator points
``SessionConfig.extra["agent_yaml"]`` at their own file. Shape::

    name: Front desk
    greeting: "Thanks for calling. How can I help?"
    fallback: ["Sorry, I can help with our hours, ..."]   # said when nothing matches (in turn)
    match_threshold: 0.45                                  # minimum intent score (0..1)
    tools: [end_call, transfer_call]                       # tools the platform always provides
    slots:
      department: {type: choice, values: {billing: [billing, invoice], sales: [sales]}}
      order_number: {type: digits}                         # choice | number | digits | text
    intents:
      - name: transfer
        examples: ["transfer me to billing", "can I speak to sales"]
        keywords: [transfer, connect]                      # a keyword hit boosts the score
        slots: [department]                                # required before acting
        ask: {department: "Which department: billing, sales or support?"}
        reply: "Putting you through to {department}."      # said first
        tool: {name: transfer_call, arguments: {destination: "{department}"}}
        after_tool: ""                                     # said once the result is back
        on_error: "Sorry, I could not transfer you."       # result had an "error" key
        unavailable: "..."                                 # the tool is not offered

Templates are ``str.format`` strings over the slots, plus ``result`` (the tool result, parsed
from JSON when possible) in ``after_tool``/``on_error``:
``"Order {order_number}: {result[status]}"``.
Missing fields render as empty text.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from switchboard.errors import ConfigError

__all__ = [
    "AgentScript",
    "IntentSpec",
    "SlotSpec",
    "ToolSpec",
    "load_agent",
    "packaged_agent_path",
    "render",
]


class SlotSpec(BaseModel):
    """A piece of information an intent needs (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["choice", "number", "digits", "text"] = "text"
    #: For ``choice``: canonical value → phrases that mean it (the value itself always counts).
    values: dict[str, list[str]] = Field(default_factory=dict)


class ToolSpec(BaseModel):
    """A function call an intent makes; argument values are templates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class IntentSpec(BaseModel):
    """One thing a caller may want."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    examples: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    slots: list[str] = Field(default_factory=list)
    ask: dict[str, str] = Field(default_factory=dict)
    reply: str = ""
    tool: ToolSpec | None = None
    after_tool: str = ""
    on_error: str = ""
    unavailable: str = ""


class AgentScript(BaseModel):
    """A whole rule-based agent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "Local agent"
    greeting: str | None = None
    fallback: list[str] = Field(default_factory=lambda: ["Sorry, could you say that again?"])
    match_threshold: float = Field(0.45, ge=0.0, le=1.0)
    tools: list[str] = Field(default_factory=list)
    slots: dict[str, SlotSpec] = Field(default_factory=dict)
    intents: list[IntentSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_slots(self) -> AgentScript:
        for intent in self.intents:
            unknown = [s for s in intent.slots if s not in self.slots]
            if unknown:
                raise ValueError(f"intent {intent.name!r} uses undeclared slots {unknown}")
            if not intent.examples and not intent.keywords:
                raise ValueError(f"intent {intent.name!r} needs examples or keywords")
        if not self.fallback:
            raise ValueError("fallback needs at least one reply")
        return self

    def intent(self, name: str) -> IntentSpec | None:
        """The intent called ``name``, if any."""
        return next((i for i in self.intents if i.name == name), None)


def packaged_agent_path() -> Path:
    """The default receptionist shipped with switchboard."""
    return Path(str(resources.files("switchboard.providers.local").joinpath("agent.yaml")))


def load_agent(path: str | Path | None = None) -> AgentScript:
    """Load and validate an agent YAML file (the packaged receptionist by default).

    Raises:
        ConfigError: the file is missing, not YAML, or not a valid agent (the message says where).
    """
    source = Path(path) if path is not None else packaged_agent_path()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read agent file {source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"agent file {source} is not valid YAML: {exc}") from exc
    try:
        return AgentScript.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(f"agent file {source} is invalid: {exc}") from exc


class _SafeFormatter(string.Formatter):
    """``str.format`` where a missing field renders as empty text instead of raising."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        try:
            return super().get_field(field_name, args, kwargs)
        except (KeyError, IndexError, AttributeError, TypeError):
            return "", field_name


_FORMATTER = _SafeFormatter()


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``values``; unknown fields become empty, spaces are tidied."""
    try:
        text = _FORMATTER.vformat(template, (), dict(values))
    except ValueError as exc:  # a malformed template: say it as written
        raise ConfigError(f"bad reply template {template!r}: {exc}") from exc
    return " ".join(text.split())
