"""Built-in tools act through the call's CallControl."""

from __future__ import annotations

import pytest

from switchboard.tools import (
    CallControl,
    NoCallControl,
    ToolContext,
    builtin_registry,
)

pytestmark = pytest.mark.anyio


class RecordingControl:
    """A CallControl that records what the tools asked for."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, str | None]] = []

    async def hang_up(self, *, goodbye: str | None) -> None:
        self.actions.append(("hang_up", goodbye))

    async def transfer(self, destination: str) -> None:
        self.actions.append(("transfer", destination))

    async def warm_transfer(self, destination: str, *, summary: str | None = None) -> str:
        self.actions.append(("warm_transfer", f"{destination}|{summary}"))
        return "connected"


def make_context(control: CallControl) -> ToolContext:
    return ToolContext(
        call_id="call_9", control=control, caller="+15550001111", callee="+15550002222"
    )


def test_recording_control_satisfies_the_protocol() -> None:
    assert isinstance(RecordingControl(), CallControl)


async def test_end_call_hangs_up_with_goodbye() -> None:
    control = RecordingControl()
    registry = builtin_registry()
    result = await registry.invoke("end_call", {"goodbye": "Bye now!"}, make_context(control))
    assert result.ok
    assert result.output == {"result": "call ended"}
    assert control.actions == [("hang_up", "Bye now!")]
    default = await registry.invoke("end_call", "{}", make_context(control))
    assert default.ok
    assert control.actions[-1] == ("hang_up", "Goodbye!")


async def test_transfer_call() -> None:
    control = RecordingControl()
    result = await builtin_registry().invoke(
        "transfer_call", {"destination": "+15550003333"}, make_context(control)
    )
    assert result.output == {"result": "transferring to +15550003333"}
    assert control.actions == [("transfer", "+15550003333")]


async def test_transfer_call_warm_passes_the_summary_and_returns_the_outcome() -> None:
    control = RecordingControl()
    arguments = {"destination": "billing", "mode": "warm", "summary": "Ana, a refund."}
    result = await builtin_registry().invoke("transfer_call", arguments, make_context(control))
    assert result.output == {"result": "connected"}
    assert control.actions == [("warm_transfer", "billing|Ana, a refund.")]
    bad = await builtin_registry().invoke(
        "transfer_call", {"destination": "billing", "mode": "hot"}, make_context(control)
    )
    assert not bad.ok and "mode" in (bad.error or "")


async def test_transfer_needs_a_destination() -> None:
    control = RecordingControl()
    result = await builtin_registry().invoke("transfer_call", {}, make_context(control))
    assert not result.ok
    assert "destination: Field required" in (result.error or "")
    assert control.actions == []


async def test_no_call_control_fails_politely() -> None:
    result = await builtin_registry().invoke("end_call", {}, make_context(NoCallControl()))
    assert (result.ok, result.error) == (False, "no call to hang up")
