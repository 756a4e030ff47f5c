"""Post-call analysis: what an agent asks for, how it is asked of a text LLM, what is kept.

An agent's ``analysis:`` block (agents.yaml)::

    analysis:
      summary: true                                   # a short summary of the call
      success: the caller got an appointment          # judged met or not, with the reason
      extract:                                        # a JSON Schema of the facts to pull out
        type: object
        properties: {name: {type: string}, day: {type: string, format: date}}
        required: [name]
      provider: gemini                                # or openai; default: whichever has a key
      model: gemini-2.5-flash                         # default per provider

After the call, a text LLM (Gemini ``streamGenerateContent`` or OpenAI Chat Completions, both
with structured output) reads the transcript and answers one JSON object of
:func:`response_schema`; :func:`read_answer` validates it against that schema, the extraction
schema included, and a wrong answer is an error, never stored as a result. With no key for a
text LLM the analysis is ``not_analysed`` with the reason: nothing is made up.

This module is pure; :mod:`.analysis_worker` runs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, field_validator

from switchboard.media import Usage
from switchboard.store.records import TranscriptEntry

__all__ = [
    "DEFAULT_MODELS",
    "SYSTEM_PROMPT",
    "AnalysisError",
    "AnalysisSpec",
    "StructuredLLM",
    "read_answer",
    "response_schema",
    "transcript_prompt",
]

#: The model used per provider when the spec names none.
DEFAULT_MODELS: dict[str, str] = {"gemini": "gemini-2.5-flash", "openai": "gpt-4o-mini"}

SYSTEM_PROMPT = (
    "You analyse a finished phone call between a caller and an AI voice agent. Use only what "
    "the transcript says; never invent facts. Answer with one JSON object matching the given "
    "schema. For a field the call did not reveal, use null where the schema allows it, "
    "otherwise an empty string."
)


class AnalysisError(Exception):
    """The LLM's answer is not what was asked (not JSON, or not valid against the schema)."""


class StructuredLLM(Protocol):
    """A text LLM that answers in JSON shaped by a schema (Gemini text, OpenAI chat)."""

    model: str

    async def generate_json(
        self,
        *,
        system_prompt: str,
        prompt: str,
        schema: Mapping[str, Any],
        temperature: float | None = 0.0,
    ) -> tuple[str, Usage]: ...

    async def aclose(self) -> None: ...


class AnalysisSpec(BaseModel):
    """An agent's ``analysis:`` block (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: bool = True
    success: str | None = None
    extract: dict[str, Any] | None = None
    provider: Literal["gemini", "openai"] | None = None
    model: str | None = None

    @field_validator("extract")
    @classmethod
    def _a_json_schema_of_an_object(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        if value.get("type") != "object":
            raise ValueError("must be a JSON Schema with type: object")
        return value

    @field_validator("success")
    @classmethod
    def _criterion(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must say what success is, or be left out")
        return value

    def asks_for_anything(self) -> bool:
        """Whether there is anything to ask (a block with everything off asks nothing)."""
        return self.summary or self.success is not None or self.extract is not None


def response_schema(spec: AnalysisSpec) -> dict[str, Any]:
    """The JSON Schema of the whole answer: ``summary``, ``success``, ``extracted`` as asked."""
    properties: dict[str, Any] = {}
    if spec.summary:
        properties["summary"] = {
            "type": "string",
            "description": "Two or three sentences: why the caller called and how it ended.",
        }
    if spec.success is not None:
        properties["success"] = {
            "type": "object",
            "description": f"Was this achieved: {spec.success}",
            "properties": {
                "met": {"type": "boolean"},
                "reason": {"type": "string", "description": "One sentence, from the transcript."},
            },
            "required": ["met", "reason"],
        }
    if spec.extract is not None:
        properties["extracted"] = spec.extract
    return {"type": "object", "properties": properties, "required": list(properties)}


def transcript_prompt(
    spec: AnalysisSpec,
    transcript: Sequence[TranscriptEntry],
    *,
    outcome: str | None = None,
    tool_calls: Sequence[str] = (),
) -> str:
    """The user message: the transcript (and what the answer must contain)."""
    lines = [
        f"{entry.role}: {entry.text}" + (" [cut off]" if entry.interrupted else "")
        for entry in transcript
    ]
    parts = ["Transcript:", *lines]
    if tool_calls:
        parts += ["", "Tools the agent used: " + ", ".join(tool_calls)]
    if outcome:
        parts += ["", f"How the call ended: {outcome}"]
    asks = []
    if spec.summary:
        asks.append("summary: a short summary of the call")
    if spec.success is not None:
        asks.append(f"success: whether this was achieved — {spec.success}")
    if spec.extract is not None:
        asks.append("extracted: the facts the schema describes")
    parts += ["", "Answer with: " + "; ".join(asks) + "."]
    return "\n".join(parts)


def read_answer(spec: AnalysisSpec, text: str) -> dict[str, Any]:
    """The validated answer, shaped for the record: ``summary``, ``success``, ``extracted``.

    Raises:
        AnalysisError: not JSON, or not valid against :func:`response_schema` (the message
            names the first problem and where it is).
    """
    try:
        answer = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise AnalysisError(f"the answer is not JSON: {exc}") from exc
    validator = Draft202012Validator(response_schema(spec))
    error = next(iter(sorted(validator.iter_errors(answer), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        raise AnalysisError(f"the answer does not match the schema at {where}: {error.message}")
    result: dict[str, Any] = {}
    if spec.summary:
        result["summary"] = answer["summary"]
    if spec.success is not None:
        verdict = answer["success"]
        result["success"] = {
            "criterion": spec.success,
            "met": verdict["met"],
            "reason": verdict["reason"],
        }
    if spec.extract is not None:
        result["extracted"] = answer["extracted"]
    return result
