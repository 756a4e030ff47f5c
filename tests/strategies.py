"""Hypothesis strategies shared by the property tests: what a hostile or broken peer can send.

A peer controls every byte of a frame. Beyond random text, the strategies that find bugs are
the ones that look almost right: a known message type with fields of the wrong JSON type,
numbers JSON allows only as extensions (``Infinity``, ``NaN``, 400-digit integers), deeply
nested arrays, and valid messages cut short.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "hostile_frames",
    "json_values",
    "odd_numbers",
    "shaped_messages",
    "truncations",
]

#: Numbers a JSON parser accepts that a naive ``int()`` / ``float()`` caller does not expect.
odd_numbers: st.SearchStrategy[Any] = st.sampled_from(
    [
        float("inf"),
        float("-inf"),
        float("nan"),
        10**400,
        -(10**400),
        1e308,
        -0.0,
        2**63,
        True,
    ]
)

_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    odd_numbers,
)

#: Any JSON value (and the non-standard numbers Python's json module reads and writes).
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def shaped_messages(
    type_key: str, types: list[str], fields: list[str]
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects whose ``type_key`` is one of ``types`` (or anything) and whose known ``fields``
    hold arbitrary JSON: they reach each message's parser with every wrong type."""
    known_fields = st.dictionaries(st.sampled_from(fields), json_values, max_size=len(fields))
    kind = st.one_of(st.sampled_from(types), json_values)
    return st.builds(lambda k, f: {**f, type_key: k}, kind, known_fields)


def truncations(message: str) -> st.SearchStrategy[str]:
    """``message`` cut at every possible length (a frame the peer stopped sending midway)."""
    return st.integers(min_value=0, max_value=max(len(message) - 1, 0)).map(lambda n: message[:n])


def _dumps(value: Any) -> str:
    return json.dumps(value)  # allow_nan: Infinity and NaN literals, as a broken peer may send


#: Whole text frames: arbitrary text, arbitrary JSON, pathological nesting.
hostile_frames: st.SearchStrategy[str] = st.one_of(
    st.text(max_size=200),
    json_values.map(_dumps),
    st.integers(min_value=1, max_value=200_000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=1, max_value=200_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
)
