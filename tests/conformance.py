"""Strict conformance of wire messages to the vendors' SDK types.

Validating a message with an SDK type alone proves little: the OpenAI SDK's models keep unknown
keys (``extra="allow"``, they land in ``model_extra``) and Deepgram's allow extras too, so a
misspelled optional field (``instructionz``) validates. :func:`conform` validates, then walks the
validated model against the raw message and fails on any key the model does not declare. Unions
and discriminated unions need no special case: the walk follows the class pydantic actually chose
for each value.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, overload

from pydantic import AliasChoices, AliasPath, BaseModel, TypeAdapter

__all__ = ["UNMODELLED", "conform", "undeclared_keys"]

M = TypeVar("M", bound=BaseModel)

# Keys the real services send that their SDKs do not model, by validated class and JSON path.
# Keep this short and sourced: everything else undeclared is a bug on our side.
UNMODELLED: dict[str, frozenset[str]] = {
    # GA session events carry the session's identity, ``{"object": "realtime.session", "id":
    # "sess_..."}`` (protocols.md §1.4), but the SDK types their ``session`` as the create
    # *request*, which has neither.
    "SessionCreatedEvent": frozenset({"$.session.id", "$.session.object"}),
    "SessionUpdatedEvent": frozenset({"$.session.id", "$.session.object"}),
    # Deepgram's live Metadata also names the models used (protocols.md §3.1); deepgram-sdk
    # 3.10.1's ``MetadataResponse`` declared ``models`` and ``model_info``, 7.x dropped them.
    "ListenV1Metadata": frozenset({"$.models", "$.model_info"}),
}


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


@functools.cache
def _declared(model: type[BaseModel]) -> dict[str, str]:
    """Every key a raw dict may use for ``model``, mapped to its field name."""
    keys: dict[str, str] = {}
    for name, info in model.model_fields.items():
        keys[name] = name
        if info.alias:
            keys[info.alias] = name
        match info.validation_alias:
            case str() as alias:
                keys[alias] = name
            case AliasChoices(choices=choices):
                for choice in choices:
                    first = choice if isinstance(choice, str) else choice.path[0]
                    keys[str(first)] = name
            case AliasPath(path=path):
                keys[str(path[0])] = name
    return keys


def undeclared_keys(value: object, raw: object, path: str = "$") -> list[str]:
    """JSON paths of the keys in ``raw`` that the validated ``value`` does not declare."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        if not isinstance(raw, Mapping):
            return found  # validated from something else (a string, an instance): no keys
        declared = _declared(type(value))
        for key, item in raw.items():
            name = declared.get(key)
            if name is None:
                found.append(f"{path}.{key}")
            else:
                found += undeclared_keys(getattr(value, name), item, f"{path}.{key}")
    elif isinstance(value, Mapping) and isinstance(raw, Mapping):
        # a dict-typed field (free-form or dict[str, Model]): walk the values it kept
        for key, item in raw.items():
            if key in value:
                found += undeclared_keys(value[key], item, f"{path}.{key}")
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str | bytes)
        and isinstance(raw, Sequence)
        and not isinstance(raw, str | bytes)
    ):
        for index, (kept, item) in enumerate(zip(value, raw, strict=False)):
            found += undeclared_keys(kept, item, f"{path}[{index}]")
    return found


@overload
def conform(kind: type[M], raw: object) -> M: ...
@overload
def conform(kind: object, raw: object) -> Any: ...
def conform(kind: object, raw: object) -> Any:
    """Validate ``raw`` with the SDK type ``kind`` and refuse keys it does not declare.

    ``kind`` is a model class or any type pydantic accepts (``RealtimeClientEvent``, a union).

    Raises:
        AssertionError: a key ``kind`` does not declare, with its path
            (``$.response.instructionz``); pydantic's ``ValidationError`` for invalid values.
    """
    validated = _adapter(kind).validate_python(raw)
    allowed = UNMODELLED.get(type(validated).__name__, frozenset())
    extra = [key for key in undeclared_keys(validated, raw) if key not in allowed]
    assert not extra, f"keys not declared by {type(validated).__name__}: {', '.join(extra)}"
    return validated
