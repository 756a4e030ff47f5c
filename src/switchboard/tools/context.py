"""What a tool sees of the call it runs in: :class:`ToolContext` and :class:`CallControl`.

A tool function asks for the context by annotating one parameter with :class:`ToolContext`; the
registry injects it and leaves it out of the JSON schema the model sees::

    @tool
    async def end_call(context: ToolContext, goodbye: str = "Goodbye!") -> str:
        await context.control.hang_up(goodbye=goodbye)
        return "ending the call"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from switchboard.errors import ToolError

__all__ = ["CallControl", "CollectedDigits", "DigitCollector", "NoCallControl", "ToolContext"]


@runtime_checkable
class CallControl(Protocol):
    """Carrier call control a tool may use; implemented per call by the bridge."""

    async def hang_up(self, *, goodbye: str | None) -> None:
        """End the call; with ``goodbye``, speak it first and hang up once it has played out."""
        ...

    async def transfer(self, destination: str) -> None:
        """Transfer the caller to ``destination`` (E.164 number or SIP URI)."""
        ...

    async def warm_transfer(self, destination: str, *, summary: str | None = None) -> str:
        """Hold the caller, dial ``destination``, brief whoever answers (``summary``, else the
        transcript) and join them; returns what happened (the caller is back when it failed)."""
        ...


@dataclass(frozen=True, slots=True)
class CollectedDigits:
    """What the caller keyed in: ``digits`` as pressed, ``ended_by`` ``finish_key``,
    ``max_digits``, ``timeout`` or ``cancelled``."""

    digits: str
    ended_by: str


@runtime_checkable
class DigitCollector(Protocol):
    """The call's keypad: the caller's keys (``collect_digits``) and keys pressed towards the
    far end (``send_digits``); implemented by the bridge."""

    async def collect(
        self,
        *,
        prompt: str | None,
        max_digits: int,
        finish_on_key: str,
        timeout_s: float,
        redact: bool,
    ) -> CollectedDigits:
        """Say ``prompt``, then gather keys until ``finish_on_key``, ``max_digits`` or
        ``timeout_s`` without a key; with ``redact`` the keys are kept out of the transcript,
        the logs and the recording."""
        ...

    async def send(self, digits: str) -> None:
        """Play DTMF ``digits`` to the far end (an IVR the call reached)."""
        ...


class NoCallControl:
    """A :class:`CallControl` for contexts with no live call (CLI tool runs, tests of schemas).

    Every operation raises :class:`ToolError`, which ``invoke`` turns into an error result.
    """

    async def hang_up(self, *, goodbye: str | None) -> None:
        raise ToolError("no call to hang up")

    async def transfer(self, destination: str) -> None:
        raise ToolError("no call to transfer")

    async def warm_transfer(self, destination: str, *, summary: str | None = None) -> str:
        raise ToolError("no call to transfer")


@dataclass(slots=True)
class ToolContext:
    """The call a tool invocation belongs to (one per call, built by the bridge).

    Attributes:
        call_id: switchboard's call id (the call record's id).
        control: hang-up / transfer through the carrier.
        caller: the calling number (E.164), when known.
        callee: the dialled number (E.164), when known.
        carrier: ``"twilio"`` / ``"telnyx"``.
        agent: the agent profile's name.
        variables: the call's variables (``POST /v1/calls``, ``agent_request_url``, the
            agent's defaults); HTTP tools send them with each request.
        extras: free-form per-call data tools may share (e.g. a CRM record looked up earlier).
        keypad: the caller's keypad (None outside a live call).
    """

    call_id: str
    control: CallControl = field(default_factory=NoCallControl)
    caller: str | None = None
    callee: str | None = None
    carrier: str | None = None
    agent: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    keypad: DigitCollector | None = None
