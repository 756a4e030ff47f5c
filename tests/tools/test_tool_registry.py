"""Pure tests of @tool schemas and the ToolRegistry (no event loop)."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from switchboard.errors import ToolError
from switchboard.providers.base import SessionConfig
from switchboard.tools import ToolContext, ToolRegistry, builtin_registry, get_tool, tool

SAMPLE = "tests.tools.sample_user_tools"


class Address(BaseModel):
    street: str
    city: str


@tool
def book_table(
    name: Annotated[str, Field(description="Guest name")],
    party_size: int,
    context: ToolContext,
    seating: Literal["inside", "outside"] = "inside",
    notes: str | None = None,
) -> str:
    """Book a restaurant table.

    Longer text that is not part of the description.

    Args:
        party_size: how many people,
            children included.
        seating: where to sit.
    """
    return f"{name}:{party_size}"


def test_schema_is_the_flat_function_shape() -> None:
    spec = get_tool(book_table)
    assert spec is not None
    assert spec.schema() == {
        "type": "function",
        "name": "book_table",
        "description": "Book a restaurant table.",
        "parameters": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "Guest name"},
                "party_size": {
                    "type": "integer",
                    "description": "how many people, children included.",
                },
                "seating": {
                    "type": "string",
                    "enum": ["inside", "outside"],
                    "default": "inside",
                    "description": "where to sit.",
                },
                "notes": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            },
            "required": ["name", "party_size"],
        },
    }
    assert spec.context_param == "context"
    assert not spec.is_async


def test_decorated_function_still_callable() -> None:
    assert book_table("Ann", 2, ToolContext(call_id="c")) == "Ann:2"


def test_options_and_nested_models() -> None:
    @tool(name="ship-it", description="Ship a parcel.", timeout_s=3)
    async def ship(to: Address, weight_kg: Annotated[float, Field(gt=0)]) -> None:
        return None

    spec = get_tool(ship)
    assert spec is not None
    assert (spec.name, spec.description, spec.timeout_s, spec.is_async) == (
        "ship-it",
        "Ship a parcel.",
        3,
        True,
    )
    params = spec.parameters
    assert "$defs" not in params  # nested models are inlined: no $ref for Gemini to choke on
    assert params["properties"]["to"] == {
        "type": "object",
        "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        "required": ["street", "city"],
    }
    assert params["properties"]["weight_kg"] == {"type": "number", "exclusiveMinimum": 0.0}
    assert params["required"] == ["to", "weight_kg"]


class TreeNode(BaseModel):
    label: str
    children: list[TreeNode] = []


def test_recursive_models_keep_their_definitions() -> None:
    @tool
    def plant(tree: TreeNode) -> None:
        """Plant a tree."""

    spec = get_tool(plant)
    assert spec is not None
    assert spec.parameters["properties"]["tree"] == {"$ref": "#/$defs/TreeNode"}
    assert "TreeNode" in spec.parameters["$defs"]


def test_tool_without_parameters_has_empty_object_schema() -> None:
    @tool
    def ping() -> str:
        """Check the line."""
        return "pong"

    spec = get_tool(ping)
    assert spec is not None
    assert spec.parameters == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x): '''Doc.'''", "has no type annotation"),
        ("def f(*args: int) -> None: '''Doc.'''", "must be a named parameter"),
        ("def f(x: int) -> None: pass", "needs a description"),
    ],
)
def test_bad_signatures_raise_tool_error(source: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(source, namespace)  # noqa: S102  # builds small functions with odd signatures
    with pytest.raises(ToolError, match=message):
        tool(namespace["f"])  # type: ignore[call-overload]  # exec'd object is untyped


def test_bad_name_rejected() -> None:
    with pytest.raises(ToolError, match="must match"):

        @tool(name="has space")
        def f() -> None:
            """Doc."""


def test_registry_register_get_subset_and_duplicates() -> None:
    registry = builtin_registry()
    registry.register(book_table)
    names = ["book_table", "collect_digits", "end_call", "send_digits", "transfer_call"]
    assert registry.names() == names
    assert "book_table" in registry
    assert len(registry) == 5
    assert registry.get("end_call").name == "end_call"
    with pytest.raises(ToolError, match=r"unknown tool 'nope'; known: book_table"):
        registry.get("nope")
    sub = registry.subset(["transfer_call", "book_table"])
    assert [s["name"] for s in sub.schemas()] == ["transfer_call", "book_table"]
    with pytest.raises(ToolError, match="unknown tools x, y"):
        registry.subset(["end_call", "x", "y"])
    registry.register(book_table)  # the same function again is a no-op

    @tool(name="book_table")
    def other(x: int) -> None:
        """Another."""

    with pytest.raises(ToolError, match="already registered"):
        registry.register(other)
    assert registry.register(other, replace=True).func is other


def test_plain_function_registered_on_the_fly() -> None:
    def shout(text: str) -> str:
        """Upper-case text."""
        return text.upper()

    registry = ToolRegistry([shout])
    assert registry.schemas()[0]["parameters"]["required"] == ["text"]


def test_schemas_fit_session_config() -> None:
    registry = builtin_registry()
    config = SessionConfig(tools=registry.schemas())
    assert config.function_tools() == registry.schemas()


def test_load_import_paths() -> None:
    registry = ToolRegistry()
    assert registry.load_import_paths([SAMPLE]) == ["lookup_order", "caller_number"]
    assert registry.load_import_paths([f"{SAMPLE}:plain_helper"]) == ["plain_helper"]
    assert registry.get("caller_number").timeout_s == 2
    assert registry.get("caller_number").context_param == "context"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.tools.no_such_module", "cannot import tool module 'tests.tools.no_such_module'"),
        (f"{SAMPLE}:missing", f"'{SAMPLE}:missing' does not name a function"),
        (f"{SAMPLE}:NOT_CALLABLE", "does not name a function"),
        ("switchboard.errors", "module 'switchboard.errors' defines no @tool functions"),
    ],
)
def test_bad_import_paths_name_the_path(path: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        ToolRegistry().load_import_paths([path])
