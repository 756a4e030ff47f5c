"""Admission of new calls: may this node take one more? (docs/security.md#call-limits)

The :class:`~switchboard.bridge.manager.CallManager` asks its :class:`CallAdmission` before it
opens anything for a call (a provider session, a record) and gives the slot back when the call
ends, however it ends. A refused call is turned away at the carrier as *busy* — TwiML
``<Reject reason="busy"/>``, Telnyx ``reject`` with ``USER_BUSY`` — so the caller hears a busy
signal and the carrier can route the call elsewhere, and nothing is spent on it.

:class:`NodeCallLimit` is the embedded implementation: at most ``SWITCHBOARD_MAX_CALLS`` calls
at once in this process (prepared or bridged). A cluster-wide limit is another implementation
of the same protocol (slots shared through Redis), chosen where the app's services are built.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["CallAdmission", "NodeCallLimit"]


class CallAdmission(Protocol):
    """Whether a new call may start; every admitted call is released exactly once or more."""

    async def admit(self, call_id: str, *, agent: str) -> str | None:
        """Take a slot for ``call_id``; None when admitted, else why not (for the log)."""
        ...

    async def release(self, call_id: str) -> None:
        """Give ``call_id``'s slot back (a call never admitted, or released, is ignored)."""
        ...


class NodeCallLimit:
    """At most ``max_calls`` calls at once in this process (0: no limit).

    Args:
        max_calls: ``SWITCHBOARD_MAX_CALLS``.
    """

    def __init__(self, max_calls: int) -> None:
        if max_calls < 0:
            raise ValueError("max_calls must be 0 (no limit) or more")
        self.max_calls = max_calls
        self._held: set[str] = set()

    @property
    def held(self) -> int:
        """Calls holding a slot now."""
        return len(self._held)

    async def admit(self, call_id: str, *, agent: str) -> str | None:
        if call_id in self._held:
            return None  # already admitted (a retried webhook for the same call)
        if self.max_calls and len(self._held) >= self.max_calls:
            return f"this node is at its limit of {self.max_calls} concurrent calls"
        self._held.add(call_id)
        return None

    async def release(self, call_id: str) -> None:
        self._held.discard(call_id)
