"""An instance of a JSON schema, as a structured-output model would answer (pure, deterministic).

The Gemini (``responseJsonSchema``) and OpenAI (``response_format: json_schema``) emulators
answer a structured-output request with their scripted turn's ``say`` when it is JSON, and
otherwise with :func:`fill`: a value that conforms to the schema, as constrained decoding makes
the real services' answers conform. Covered: ``type`` (one or a list), ``enum``/``const``,
``properties`` (every one is filled, so optional fields show up too), ``items``/``minItems``,
``minimum``/``maximum``, ``minLength``, ``format`` (date, date-time, email, uri),
``anyOf``/``oneOf`` (the first branch) and local ``$ref`` (``#/$defs/…``, ``#/definitions/…``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["fill"]

_FORMATS = {
    "date": "2026-12-01",
    "date-time": "2026-12-01T10:00:00Z",
    "time": "10:00:00",
    "email": "caller@example.com",
    "uri": "https://example.com/",
}
_MAX_DEPTH = 32


def fill(
    schema: Mapping[str, Any], *, root: Mapping[str, Any] | None = None, name: str = ""
) -> Any:
    """A value that ``schema`` accepts (``name`` is the property it is for, used in strings)."""
    return _fill(schema, root if root is not None else schema, name, 0)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _fill(schema: Mapping[str, Any], root: Mapping[str, Any], name: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return None
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            merged = dict(branches[0]) if key != "allOf" else {}
            if key == "allOf":
                for branch in branches:
                    merged.update(_resolve(branch, root))
            return _fill(merged, root, name, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    match str(kind).lower():
        case "object":
            props = schema.get("properties") or {}
            return {key: _fill(sub, root, key, depth + 1) for key, sub in props.items()}
        case "array":
            count = max(1, int(schema.get("minItems", 1)))
            items = schema.get("items") or {}
            return [_fill(items, root, name, depth + 1) for _ in range(count)]
        case "integer":
            return int(schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1))
        case "number":
            return float(schema.get("minimum", 0.0))
        case "boolean":
            return True
        case "null":
            return None
        case _:
            text = _FORMATS.get(str(schema.get("format")), f"example {name or 'text'}")
            return text.ljust(int(schema.get("minLength", 0)), ".")
