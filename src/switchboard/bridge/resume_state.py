"""What a resumed call carries over from the node that held it: the provider in use, the turn
counter and the tools' per-call state (#17 §2).

The conversation itself comes back from the call's transcript in the shared database
(``bridge/resume.py``); what is not in the record is kept in a cluster note,
``callstate:{call_id}``, that the node holding the call rewrites whenever it changes:

* ``provider`` — the provider serving the call. A call that failed over resumes on the
  provider it had moved to (pinned), not on its agent's first choice again;
* ``turn`` — the bridge core's turn counter, so turn latencies go on numbering where they were;
* ``variables`` and ``extras`` — the :class:`~switchboard.tools.ToolContext` tools write to
  (``collect_digits`` keeps the digits in ``variables``; ``extras`` is free-form), restored into
  the resumed call's context. Values that are not JSON are left out.

:class:`StateNoteSink` sits in the call's chain of sinks and notes the state after each turn,
tool call and failover — the moments it changes — one write at a time, the latest winning. A
node killed between a change and its write loses that change (best effort, like the rest of
the cluster's notes); without Redis the note lives in the node's memory and helps nobody else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from switchboard.bridge.sink import CallSink
from switchboard.cluster import Cluster
from switchboard.errors import ClusterUnavailable
from switchboard.media import Usage
from switchboard.tools import ToolContext, ToolResult

if TYPE_CHECKING:
    from switchboard.providers.events import ProviderEventType

__all__ = ["CarriedState", "StateNoteSink", "carried_state", "decode_state", "encode_state"]

logger = logging.getLogger(__name__)

#: How long a call's state is kept after its last change (a call may be quiet for long; the
#: resume follows the loss of the stream within seconds).
STATE_TTL_S = 3600.0


@dataclass(frozen=True, slots=True)
class CarriedState:
    """A call's state a resume restores (module docstring)."""

    provider: str
    turn: int = 0
    variables: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def restore(self, context: ToolContext) -> None:
        """Put the carried tool state into the resumed call's ``context`` (carried values win
        over the agent's defaults: a tool set them during the call)."""
        context.variables.update(self.variables)
        context.extras.update(self.extras)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue  # an object a tool keeps for itself: it cannot cross nodes
        out[str(key)] = value
    return out


def encode_state(state: CarriedState) -> str:
    """The note's text for ``state`` (JSON; values that are not JSON left out)."""
    return json.dumps(
        {
            "provider": state.provider,
            "turn": state.turn,
            "variables": _jsonable(dict(state.variables)),
            "extras": _jsonable(dict(state.extras)),
        }
    )


def decode_state(raw: str) -> CarriedState | None:
    """The state in a note's text; None when it is malformed."""
    try:
        data = json.loads(raw)
        provider, turn = data["provider"], data.get("turn", 0)
        variables, extras = data.get("variables", {}), data.get("extras", {})
        if not isinstance(provider, str) or not isinstance(turn, int) or isinstance(turn, bool):
            raise TypeError("provider or turn of the wrong type")
        if not isinstance(variables, dict) or not isinstance(extras, dict):
            raise TypeError("variables or extras of the wrong type")
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("malformed call state ignored: %s", exc)
        return None
    return CarriedState(
        provider, max(0, turn), {str(k): str(v) for k, v in variables.items()}, dict(extras)
    )


def _note(call_id: str) -> str:
    return f"callstate:{call_id}"


async def carried_state(cluster: Cluster, call_id: str) -> CarriedState | None:
    """The state the node that held ``call_id`` last noted; None when there is none (or the
    cluster cannot be read: the call resumes as a new one would start, logged)."""
    try:
        raw = await cluster.get_note(_note(call_id))
    except ClusterUnavailable as exc:
        logger.warning("call %s: state unreadable, resumed without it: %s", call_id, exc)
        return None
    return decode_state(raw) if raw is not None else None


class StateNoteSink(CallSink):
    """A sink that notes the call's :class:`CarriedState` in the cluster when it changes
    (after a turn, a tool call, a failover); everything passes on to ``inner``.

    Args:
        inner: the next sink.
        cluster: where the note goes.
        call_id: the call.
        provider: the provider serving the call now.
        context: the call's tool context (its ``variables`` and ``extras`` are noted).
        turn: the turn counter's value now (a resumed call's carried turn).
    """

    def __init__(
        self,
        inner: CallSink,
        *,
        cluster: Cluster,
        call_id: str,
        provider: str,
        context: ToolContext,
        turn: int = 0,
    ) -> None:
        self.inner = inner
        self.cluster = cluster
        self.call_id = call_id
        self.provider = provider
        self.turn = turn
        self.context = context
        self._task: asyncio.Task[None] | None = None
        self._again = False  # a change came while a write was under way

    def state(self) -> CarriedState:
        return CarriedState(
            self.provider, self.turn, dict(self.context.variables), dict(self.context.extras)
        )

    def note(self) -> None:
        """Write the state now (or once the write under way is done): never blocks."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while True:
            self._again = False
            try:
                await self.cluster.put_note(
                    _note(self.call_id), encode_state(self.state()), ttl_s=STATE_TTL_S
                )
            except ClusterUnavailable as exc:
                logger.warning("call %s: state not noted: %s", self.call_id, exc)
            if not self._again:
                return

    # -- CallSink ----------------------------------------------------------------------------------
    def transcript(self, role: str, text: str, at_ms: float, interrupted: bool) -> None:
        self.inner.transcript(role, text, at_ms, interrupted)

    def timeline(self, kind: str, at_ms: float, data: dict[str, Any]) -> None:
        self.inner.timeline(kind, at_ms, data)
        if kind == "provider.failover" and isinstance(data.get("to"), str):
            self.provider = data["to"]
            self.note()

    def turn_latency(self, turn: int, latency_ms: float) -> None:
        self.inner.turn_latency(turn, latency_ms)
        self.turn = max(self.turn, turn)
        self.note()

    def tool_call(self, result: ToolResult, at_ms: float) -> None:
        self.inner.tool_call(result, at_ms)
        self.note()

    def usage(self, usage: Usage) -> None:
        self.inner.usage(usage)

    def provider_event(self, kind: ProviderEventType, at_ms: float) -> None:
        self.inner.provider_event(kind, at_ms)
