"""ToolRegistry.invoke: validation, timeouts, failures, threads, JSON results."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import date
from typing import Annotated

import pytest
from pydantic import Field
from tests.conftest import UNIT
from tests.waiting import eventually

from switchboard.errors import ToolError
from switchboard.tools import ToolContext, ToolRegistry, tool

pytestmark = pytest.mark.anyio


@dataclass
class Slot:
    day: date
    seats: int


@tool
async def reserve(
    day: date,
    seats: Annotated[int, Field(ge=1, le=8)],
    name: str,
    context: ToolContext,
) -> Slot:
    """Reserve seats."""
    context.extras["reserved"] = name
    return Slot(day, seats)


@tool(timeout_s=0.05 * UNIT)
async def slow() -> str:
    """Never finishes in time."""
    await asyncio.Event().wait()  # only the timeout ends it
    return "late"


TOOL_BLOCKED = threading.Event()
LOOP_ANSWERED = threading.Event()


@tool
def blocking(seconds: float) -> str:
    """Blocks its thread until the event loop answers (at most ``seconds``)."""
    TOOL_BLOCKED.set()
    answered = LOOP_ANSWERED.wait(seconds)
    return f"{threading.current_thread().name} answered={answered}"


@tool
def broken() -> None:
    """Raises."""
    raise RuntimeError("database on fire")


@tool
def refuses() -> None:
    """Raises a ToolError whose message is for the model."""
    raise ToolError("the shop is closed today")


@tool
def unserialisable() -> object:
    """Returns something that is not JSON."""
    return object()


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry([reserve, slow, blocking, broken, refuses, unserialisable])


@pytest.fixture
def context() -> ToolContext:
    return ToolContext(call_id="call_1", caller="+15550001111")


async def test_valid_call_returns_json_safe_result(
    registry: ToolRegistry, context: ToolContext
) -> None:
    result = await registry.invoke(
        "reserve", '{"day": "2026-12-24", "seats": "3", "name": "Ann"}', context, call_id="fc_1"
    )
    assert result.ok, result.error
    assert result.value == {"day": "2026-12-24", "seats": 3}
    assert result.output == {"result": {"day": "2026-12-24", "seats": 3}}
    assert result.arguments == {"day": "2026-12-24", "seats": "3", "name": "Ann"}
    assert result.call_id == "fc_1"
    assert result.duration_ms >= 0
    assert context.extras["reserved"] == "Ann"


async def test_invalid_arguments_list_every_bad_field(
    registry: ToolRegistry, context: ToolContext
) -> None:
    result = await registry.invoke("reserve", {"day": "someday", "seats": 20, "x": 1}, context)
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("invalid arguments for reserve: ")
    for field in ("day:", "seats:", "name: Field required", "x: Extra inputs"):
        assert field in result.error
    assert result.output == {"error": result.error}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [("{not json", "arguments are not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
async def test_malformed_argument_text(
    registry: ToolRegistry, context: ToolContext, arguments: str, message: str
) -> None:
    result = await registry.invoke("reserve", arguments, context)
    assert not result.ok
    assert message in (result.error or "")


async def test_unknown_tool_is_an_error_result(registry: ToolRegistry) -> None:
    result = await registry.invoke("fly_to_moon", {}, None)
    assert (result.ok, result.error) == (False, "unknown tool 'fly_to_moon'")


async def test_context_required(registry: ToolRegistry) -> None:
    result = await registry.invoke("reserve", {"day": "2026-01-01", "seats": 1, "name": "A"})
    assert result.error == "tool reserve needs a call context"


async def test_timeout(registry: ToolRegistry) -> None:
    result = await registry.invoke("slow", None)
    assert not result.ok
    assert result.error == f"tool slow timed out after {0.05 * UNIT:g} s"


async def test_exceptions_become_error_results(registry: ToolRegistry) -> None:
    result = await registry.invoke("broken", "")
    assert result.error == "tool broken failed: RuntimeError: database on fire"
    refused = await registry.invoke("refuses", {})
    assert refused.error == "the shop is closed today"


async def test_non_json_result(registry: ToolRegistry) -> None:
    result = await registry.invoke("unserialisable", {})
    assert not result.ok
    assert "not JSON" in (result.error or "")


async def test_sync_tools_run_in_a_thread_without_blocking_the_loop(
    registry: ToolRegistry,
) -> None:
    TOOL_BLOCKED.clear()
    LOOP_ANSWERED.clear()
    invoked = asyncio.create_task(registry.invoke("blocking", {"seconds": 5 * UNIT}))
    # Had the tool blocked the loop, nothing here would run until it gave up unanswered.
    await eventually(TOOL_BLOCKED.is_set, what="the tool blocking")
    LOOP_ANSWERED.set()
    result = await asyncio.wait_for(invoked, 5 * UNIT)
    assert result.ok
    thread, answered = str(result.value).split(" ")
    assert answered == "answered=True"
    assert thread != threading.current_thread().name


async def test_parameter_names_pydantic_reserves() -> None:
    @tool
    def echo(json: str, model_name: str, schema: int = 1) -> str:
        """Echo reserved names."""
        return f"{json}|{model_name}|{schema}"

    registry = ToolRegistry([echo])
    params = registry.get("echo").parameters
    assert list(params["properties"]) == ["json", "model_name", "schema"]
    assert params["required"] == ["json", "model_name"]
    result = await registry.invoke("echo", {"json": "a", "model_name": "b", "schema": 2})
    assert result.value == "a|b|2"
    bad = await registry.invoke("echo", {"json": 1})
    assert bad.error is not None
    assert "json: Input should be a valid string" in bad.error
    assert "model_name: Field required" in bad.error
