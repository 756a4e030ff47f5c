"""Tool declarations for Gemini: JSON Schema (the seed's OpenAI function shape) → Gemini ``Schema``.

Gemini's ``FunctionDeclaration.parameters`` is a subset of OpenAPI 3.0 with upper-case type names
(``OBJECT``, ``STRING``…; google-genai ``types.Type``) and no ``additionalProperties`` or
``$schema`` (ai.google.dev/api/caching#Schema). Both the Live provider and the text LLM client
declare tools with :func:`function_declarations`, so the two speak the same dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["function_declarations", "gemini_schema"]

_SCALAR_KEYS = (
    "description",
    "enum",
    "format",
    "nullable",
    "required",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "title",
    "default",
    "example",
    "propertyOrdering",
)


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one JSON Schema node to Gemini's ``Schema`` (recursively).

    ``"type": ["string", "null"]`` becomes ``STRING`` with ``nullable``; keys Gemini does not
    know are dropped.
    """
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        if len(non_null) != len(kind):
            out["nullable"] = True
        kind = non_null[0] if non_null else "null"
    if isinstance(kind, str):
        out["type"] = kind.upper()
    for key in _SCALAR_KEYS:
        if key in schema:
            out[key] = schema[key]
    if isinstance(schema.get("properties"), Mapping):
        out["properties"] = {k: gemini_schema(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("items"), Mapping):
        out["items"] = gemini_schema(schema["items"])
    if isinstance(schema.get("anyOf"), list):
        out["anyOf"] = [gemini_schema(s) for s in schema["anyOf"]]
    return out


def function_declarations(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{"functionDeclarations": [...]}]`` for flat seed tools (``SessionConfig.function_tools``).

    Returns an empty list when there are no tools (the ``tools`` field is then omitted).
    """
    decls: list[dict[str, Any]] = []
    for tool in tools:
        decl: dict[str, Any] = {"name": tool["name"], "description": tool.get("description", "")}
        params = tool.get("parameters")
        if params and params.get("properties"):
            decl["parameters"] = gemini_schema(params)
        decls.append(decl)
    return [{"functionDeclarations": decls}] if decls else []
