"""The call control tools see during a call (hang up, transfers), and the dial-policy check.

Transfers pass the call's :class:`~switchboard.telephony.dialplan.DialPlan` first (toll-fraud
guard): a destination the plan refuses is never dialled. The refusal is logged at WARNING with
what was asked for, put on the call's timeline, and raised as a :class:`ToolError`, which the
tool registry hands back to the model as the function's error result so it can tell the caller.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from switchboard.bridge.actions import Action
from switchboard.bridge.core import BridgeCore
from switchboard.bridge.sink import CallSink
from switchboard.bridge.warm_transfer import WarmTransfer
from switchboard.errors import DialRefused, ToolError
from switchboard.telephony.dialplan import DialPlan, refusal_for_model, require_allowed

__all__ = ["CallRunner", "SessionCallControl", "checked_destination"]

logger = logging.getLogger(__name__)


def to_text(requested: str) -> str:
    """What was asked for, as logged (the first 100 characters)."""
    return requested.strip()[:100]


class CallRunner(Protocol):
    """What call control needs of the call it acts on (``CallSession`` provides it)."""

    @property
    def core(self) -> BridgeCore: ...

    @property
    def dial_plan(self) -> DialPlan: ...

    @property
    def sink(self) -> CallSink: ...

    @property
    def log(self) -> logging.LoggerAdapter[Any]: ...

    @property
    def warm(self) -> WarmTransfer | None: ...

    def now(self) -> float: ...

    async def apply(self, actions: list[Action]) -> None: ...


def checked_destination(
    plan: DialPlan, requested: str, what: str, call_id: str | None = None
) -> str:
    """``requested`` resolved by ``plan`` (API transfers, outbound calls).

    Raises:
        DialRefused: ``plan`` refuses it; logged at WARNING with the attempted destination.
    """
    try:
        return require_allowed(plan, requested)
    except DialRefused as exc:
        asked = requested.strip()[:100]
        extra = {"call_id": call_id} if call_id else None
        logger.warning("%s to %r refused: %s", what, asked, exc.reason, extra=extra)
        raise


class SessionCallControl:
    """The :class:`~switchboard.tools.CallControl` of one call: requests go through the core."""

    def __init__(self, session: CallRunner) -> None:
        self._session = session

    async def hang_up(self, *, goodbye: str | None) -> None:
        # The model's own reply to the function result is the goodbye; if that reply is silent
        # the core has ``goodbye`` said. It hangs up once the goodbye has played (or after a
        # grace period if nothing comes).
        s = self._session
        await s.apply(
            s.core.request_hang_up("agent_hangup", s.now(), goodbye=goodbye, from_tool=True)
        )

    async def transfer(self, destination: str) -> None:
        s = self._session
        plan = s.dial_plan
        decision = plan.check(destination)
        if not decision.allowed or decision.destination is None:
            asked = destination.strip()[:100]
            s.log.warning("transfer to %r refused: %s", asked, decision.reason)
            s.sink.timeline(
                "call.transfer_refused", s.now(), {"requested": asked, "reason": decision.reason}
            )
            raise ToolError(refusal_for_model(decision, plan.names))
        await s.apply(s.core.request_transfer(decision.destination, s.now(), from_tool=True))

    async def warm_transfer(self, destination: str, *, summary: str | None = None) -> str:
        s = self._session
        warm = s.warm
        if warm is None:
            raise ToolError("warm transfer is not available on this call; use a cold transfer")
        decision = s.dial_plan.check(destination)
        if not decision.allowed or decision.destination is None:
            await self.transfer(destination)  # refused: logged, on the timeline, raised
            return ""
        try:
            to = warm.check(decision.destination)
        except DialRefused as exc:
            s.log.warning("warm transfer to %r refused: %s", decision.destination, exc.reason)
            refused = {"requested": to_text(destination), "reason": exc.reason}
            s.sink.timeline("call.transfer_refused", s.now(), refused)
            raise ToolError(
                f"a warm transfer to {destination!r} is not allowed ({exc.reason}); "
                "a cold transfer may be"
            ) from None
        outcome = await warm.transfer(to, summary=summary)
        return outcome or "connected: the caller is with the person now"
