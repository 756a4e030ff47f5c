"""JSON-schema clean-up for tool parameters: what the models' function-calling dialects accept.

Pydantic generates the schema of a tool's parameters (:mod:`.registry`); these pure functions
drop its ``title`` noise and inline ``$defs`` references, which Gemini's ``Schema`` cannot follow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["inline_refs", "strip_titles"]


def strip_titles(schema: Any) -> Any:
    """Drop pydantic's generated ``title`` keys (noise for the model), keeping property names."""
    if isinstance(schema, list):
        return [strip_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: strip_titles(sub) for name, sub in value.items()}
        else:
            out[key] = strip_titles(value)
    return out


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``{"$ref": "#/$defs/X"}`` by the definition, so schemas are self-contained.

    Gemini's ``Schema`` dialect has no ``$ref``; OpenAI accepts both forms. A recursive model
    cannot be inlined: its schema is returned unchanged, ``$defs`` included.
    """
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema

    class _Recursive(Exception):
        pass

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref[len("#/$defs/") :]
            if name in seen or name not in defs:
                raise _Recursive(name)
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**walk(defs[name], (*seen, name)), **walk(rest, seen)}
        return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}

    try:
        inlined: dict[str, Any] = walk(schema, ())
    except _Recursive:
        return schema
    return inlined
