"""Per-call variables: checked, and substituted for ``{{name}}`` in an agent's texts.

A call's variables come from ``POST /v1/calls`` (``"variables": {"customer_name": "Ada"}``),
from the ``agent_request_url`` answer for an inbound call, and from the agent's own
``variables:`` defaults in agents.yaml (the call's win). They are plain text::

    names     [A-Za-z_][A-Za-z0-9_]*, at most 64 characters
    values    strings (no numbers, lists or objects), at most 2,000 characters
    a call    at most 64 variables and 16 KiB of names and values (UTF-8)

:func:`render` replaces each ``{{name}}`` (spaces inside the braces allowed) in one pass: a
value is inserted as it is and never expanded again, so a caller-supplied ``{{x}}`` in a value
stays literal. A placeholder whose variable is not set becomes the empty string, and its name
is returned in :attr:`Rendered.missing` so the caller can warn (inbound calls) or refuse
(``POST /v1/calls`` answers 422). Braces that do not hold a variable name are left alone.

This module is pure: no I/O, no logging.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator

__all__ = [
    "MAX_TOTAL_BYTES",
    "MAX_VALUE_CHARS",
    "MAX_VARIABLES",
    "CallVariables",
    "Rendered",
    "check_variables",
    "merged",
    "placeholders",
    "render",
]

MAX_VARIABLES = 64
MAX_NAME_CHARS = 64
MAX_VALUE_CHARS = 2000
MAX_TOTAL_BYTES = 16 * 1024

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def check_variables(value: object) -> dict[str, str]:
    """``value`` as a call's variables, or ValueError naming what is wrong.

    The messages name variables, never their values (which may be personal data).
    """
    if not isinstance(value, Mapping):
        raise ValueError("variables must be an object of names to strings")
    if len(value) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} variables, not {len(value)}")
    checked: dict[str, str] = {}
    total = 0
    for name, text in value.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME_CHARS:
            shown = repr(name)[:40]
            raise ValueError(
                f"variable name {shown} must match [A-Za-z_][A-Za-z0-9_]* "
                f"(at most {MAX_NAME_CHARS} characters)"
            )
        if not isinstance(text, str):
            raise ValueError(f"variable {name!r} must be a string, not {type(text).__name__}")
        if len(text) > MAX_VALUE_CHARS:
            raise ValueError(f"variable {name!r} is longer than {MAX_VALUE_CHARS} characters")
        total += len(name.encode()) + len(text.encode("utf-8", "surrogatepass"))
        checked[name] = text
    if total > MAX_TOTAL_BYTES:
        raise ValueError(f"variables hold more than {MAX_TOTAL_BYTES} bytes")
    return checked


def _validated(value: dict[str, str]) -> dict[str, str]:
    return check_variables(value)


#: A pydantic field type for a call's variables (``dict[str, str]`` checked as above).
CallVariables = Annotated[dict[str, str], AfterValidator(_validated)]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered text and the placeholders it had no variable for (in order, once each)."""

    text: str
    missing: tuple[str, ...] = ()


def placeholders(template: str) -> list[str]:
    """The variable names ``template`` refers to, in order, once each."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def render(template: str, variables: Mapping[str, str]) -> Rendered:
    """``template`` with each ``{{name}}`` replaced by its variable (empty when unset)."""
    missing: dict[str, None] = {}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return variables[name]
        missing[name] = None
        return ""

    return Rendered(_PLACEHOLDER.sub(value, template), tuple(missing))


def merged(defaults: Mapping[str, str], call: Mapping[str, Any] | None) -> dict[str, str]:
    """The agent's ``defaults`` overlaid with a call's variables (checked again, together)."""
    return check_variables({**defaults, **(call or {})})
