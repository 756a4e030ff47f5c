"""Tool schemas checked against the official SDK types (OpenAI Realtime, google-genai).

* OpenAI: ``openai.types.realtime.RealtimeFunctionTool`` is the ``session.tools[]`` item.
* Gemini: ``types.Schema.from_json_schema`` (the SDK's own JSON Schema → Gemini ``Schema``
  conversion) must accept the schema of a tool using the common parameter types; numeric
  exclusive bounds (``Field(gt=...)``) are outside the SDK's ``JSONSchema`` subset, so tools
  meant for Gemini should use ``ge``/``le``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from google.genai import types
from openai.types.realtime import RealtimeFunctionTool
from pydantic import BaseModel, Field
from tests.conformance import conform

from switchboard.tools import ToolRegistry, builtin_registry, tool


class Customer(BaseModel):
    name: str
    vip: bool = False


@tool
def create_ticket(
    customer: Customer,
    subject: Annotated[str, Field(description="One line summary", max_length=80)],
    priority: Literal["low", "normal", "high"] = "normal",
    tags: list[str] | None = None,
    callback_minutes: Annotated[int, Field(ge=0, le=1440)] = 60,
    score: float = 0.5,
) -> str:
    """Open a support ticket."""
    return "T-1"


def registry() -> ToolRegistry:
    tools = builtin_registry()
    tools.register(create_ticket)
    return tools


def test_schemas_are_openai_realtime_function_tools() -> None:
    for schema in registry().schemas():
        parsed = conform(RealtimeFunctionTool, schema)
        assert parsed.type == "function"
        assert parsed.model_dump(exclude_none=True) == schema


def test_schemas_convert_to_gemini_schema_with_the_sdk() -> None:
    for schema in registry().schemas():
        json_schema = conform(types.JSONSchema, schema["parameters"])
        gemini = types.Schema.from_json_schema(json_schema=json_schema, api_option="GEMINI_API")
        assert gemini.type == types.Type.OBJECT
        assert set(gemini.properties or {}) == set(schema["parameters"]["properties"])
        declaration = types.FunctionDeclaration(
            name=schema["name"],
            description=schema["description"],
            parameters_json_schema=schema["parameters"],
        )
        assert declaration.name == schema["name"]
    ticket = registry().get("create_ticket").parameters
    gemini = types.Schema.from_json_schema(
        json_schema=conform(types.JSONSchema, ticket), api_option="GEMINI_API"
    )
    props = gemini.properties or {}
    assert props["customer"].type == types.Type.OBJECT
    assert props["priority"].enum == ["low", "normal", "high"]
    assert props["callback_minutes"].maximum == 1440
