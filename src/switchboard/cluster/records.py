"""The records and messages the nodes of a cluster share (pure: data and JSON, no I/O).

Call directory entries, slot requests and answers, the heartbeat timing, and the two kinds of
message a node's inbox carries — :class:`ControlCommand` (live control of a call) and
:class:`Handoff` (a carrier event for a call held by another node) — with their JSON form
(:func:`encode_message`, :func:`decode_message`).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast, get_args

from switchboard.errors import RemoteProtocolError

__all__ = [
    "Admission",
    "CallEntry",
    "CallState",
    "ClusterMessage",
    "ClusterTiming",
    "CommandAction",
    "ControlCommand",
    "Handoff",
    "NodeInfo",
    "SlotRequest",
    "check_name",
    "decode_message",
    "encode_message",
]

#: ``starting`` (prepared, no media yet) → ``live`` → ``ending``; ``lost`` when its node stopped
#: heart-beating (the call may still be up at the carrier, but nobody holds its media).
CallState = Literal["starting", "live", "ending", "lost"]
#: What a :class:`ControlCommand` asks the owning node to do to a live call.
#: ``release``: let a prepared (not yet bridged) call go, for the node its media reached.
#: ``listen`` / ``operator``: serve an operator's audio socket relayed by the sending node
#: (``text`` names the stream; app/operator_relay.py).
#: ``warm_transfer``: start a warm transfer to ``destination`` on the owner (it runs there).
CommandAction = Literal[
    "hangup",
    "transfer",
    "warm_transfer",
    "say",
    "release",
    "whisper",
    "takeover",
    "handback",
    "listen",
    "operator",
]

# Node ids, scopes and namespaces become parts of Redis keys and slot members ("node|call"):
# no separators, no spaces, no braces (hash tags), bounded length.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")


def check_name(value: str, what: str) -> str:
    """``value`` if it is a valid node id / scope / namespace, else ValueError naming ``what``."""
    if not _NAME.fullmatch(value):
        raise ValueError(f"invalid {what} {value[:40]!r}: use letters, digits and ._:@/+=-")
    return value


@dataclass(frozen=True, slots=True)
class ClusterTiming:
    """How often a node heart-beats and how soon a silent node's calls are marked lost.

    A node that stops heart-beating is declared dead ``node_ttl_s`` after its last beat; every
    node sweeps every ``sweep_s``, so its calls are marked ``lost`` within
    ``node_ttl_s + sweep_s`` (8 s by default; docs/cluster.md#liveness).

    Attributes:
        heartbeat_s: interval between heartbeats.
        node_ttl_s: how long one heartbeat keeps a node alive (several intervals, so one slow
            beat is not a death).
        sweep_s: interval between sweeps for dead nodes.
        lost_retention_s: how long a lost call stays listed before it is forgotten.
        receive_block_s: longest single wait of the inbox reader (also its reconnect cadence).
    """

    heartbeat_s: float = 2.0
    node_ttl_s: float = 6.0
    sweep_s: float = 2.0
    lost_retention_s: float = 3600.0
    receive_block_s: float = 1.0

    def __post_init__(self) -> None:
        if min(self.heartbeat_s, self.sweep_s, self.receive_block_s) <= 0:
            raise ValueError("cluster intervals must be positive")
        if self.node_ttl_s <= self.heartbeat_s:
            raise ValueError("node_ttl_s must be longer than heartbeat_s")


@dataclass(frozen=True, slots=True)
class CallEntry:
    """One call in the call directory: who holds it and what it is.

    Attributes:
        call_id: our id of the call.
        node_id: the node holding the call's media (and its provider session).
        carrier: ``twilio`` / ``telnyx``.
        carrier_call_id: the carrier's id (Twilio CallSid, Telnyx call_control_id).
        agent: the agent answering it.
        provider: the voice provider chosen for it.
        started_at: wall-clock start (Unix seconds).
        state: see :data:`CallState`.
        worker: the worker inside the node, when a node runs several ("" otherwise).
        direction: ``inbound`` / ``outbound`` ("" when unknown).
        from_number: the caller's number.
        to_number: the number called.
    """

    call_id: str
    node_id: str
    carrier: str
    carrier_call_id: str
    agent: str = ""
    provider: str = ""
    started_at: float = field(default_factory=time.time)
    state: CallState = "starting"
    worker: str = ""
    direction: str = ""
    from_number: str = ""
    to_number: str = ""

    def to_fields(self) -> dict[str, str]:
        """The entry as flat strings (a Redis hash)."""
        return {name: str(value) for name, value in asdict(self).items()}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> CallEntry:
        """Inverse of :meth:`to_fields`; raises RemoteProtocolError on a malformed entry."""
        try:
            state = fields["state"]
            if state not in get_args(CallState):
                raise ValueError(f"unknown state {state!r}")
            return cls(
                call_id=fields["call_id"],
                node_id=fields["node_id"],
                carrier=fields["carrier"],
                carrier_call_id=fields["carrier_call_id"],
                agent=fields.get("agent", ""),
                provider=fields.get("provider", ""),
                started_at=float(fields["started_at"]),
                state=cast("CallState", state),  # checked against CallState above
                worker=fields.get("worker", ""),
                direction=fields.get("direction", ""),
                from_number=fields.get("from_number", ""),
                to_number=fields.get("to_number", ""),
            )
        except (KeyError, ValueError) as exc:
            raise RemoteProtocolError(f"malformed call directory entry: {exc}") from exc


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node that is heart-beating: its id and how long its last beat keeps it alive."""

    node_id: str
    expires_in_s: float


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """One slot to take for a call: at most ``limit`` calls in ``scope`` at once.

    Scopes are names such as ``agent:support`` or ``node:<node id>``.
    """

    scope: str
    limit: int


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to a slot request: granted, or the first scope that was full."""

    granted: bool
    full_scope: str = ""


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """Live control of a call, sent to the node that holds it.

    Attributes:
        call_id: the call to act on.
        action: see :data:`CommandAction`.
        destination: where to transfer (``transfer``, ``warm_transfer``).
        text: what the agent says (``say``) or is told (``whisper``).
        reason: why, or who asked (for the call's timeline and logs).
        sender: the node that sent it.
        id: unique per command (duplicates from a retried send are dropped by the receiver).
        issued_at: wall-clock time it was sent (Unix seconds).
        respond: the agent acts on a ``whisper`` at once.
    """

    call_id: str
    action: CommandAction
    destination: str = ""
    reason: str = ""
    sender: str = ""
    id: str = field(default_factory=_new_id)
    text: str = ""
    issued_at: float = field(default_factory=time.time)
    respond: bool = False


@dataclass(frozen=True, slots=True)
class Handoff:
    """A carrier event for a call held by another node, handed to that node in order.

    Attributes:
        call_id: our id of the call.
        kind: what ``body`` is (e.g. ``telnyx.webhook``); the receiver dispatches on it.
        body: the event, already verified by the node that received it (JSON text).
        sender: the node that received the event.
        id: unique per handoff.
        sent_at: wall-clock time it was handed off (Unix seconds).
    """

    call_id: str
    kind: str
    body: str
    sender: str = ""
    id: str = field(default_factory=_new_id)
    sent_at: float = field(default_factory=time.time)


ClusterMessage = ControlCommand | Handoff


def encode_message(message: ClusterMessage) -> str:
    """One inbox message as JSON text (``type`` says which dataclass)."""
    kind = "command" if isinstance(message, ControlCommand) else "handoff"
    return json.dumps({"type": kind, **asdict(message)}, separators=(",", ":"))


def decode_message(text: str | bytes) -> ClusterMessage:
    """Inverse of :func:`encode_message`.

    Raises:
        RemoteProtocolError: not JSON, an unknown type, or fields that do not fit.
    """
    try:
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        kind = data.pop("type", None)
        if kind == "command":
            if data.get("action") not in get_args(CommandAction):
                raise ValueError(f"unknown action {data.get('action')!r}")
            command = ControlCommand(**data)
            _check_types(command)
            return command
        if kind == "handoff":
            handoff = Handoff(**data)
            _check_types(handoff)
            return handoff
        raise ValueError(f"unknown message type {kind!r}")
    except (TypeError, ValueError) as exc:
        raise RemoteProtocolError(f"malformed cluster message: {exc}") from exc


def _check_types(message: ClusterMessage) -> None:
    for name, value in asdict(message).items():
        if name == "respond":
            if not isinstance(value, bool):
                raise TypeError(f"field {name} has type {type(value).__name__}")
            continue
        wanted: type | tuple[type, ...] = (int, float) if name in ("issued_at", "sent_at") else str
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise TypeError(f"field {name} has type {type(value).__name__}")
