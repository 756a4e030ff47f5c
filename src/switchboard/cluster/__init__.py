"""Shared state between switchboard nodes (docs/cluster.md).

:class:`Cluster` is one node's handle: ``Cluster.from_settings(settings)`` keeps the state in
this process when ``SWITCHBOARD_REDIS_URL`` is unset (the embedded default) and in Redis when it
is set. The records and protocols are in :mod:`switchboard.cluster.base`.
"""

from __future__ import annotations

from switchboard.cluster.base import (
    Admission,
    CallDirectory,
    CallEntry,
    CallState,
    Claims,
    ClusterMessage,
    ClusterTiming,
    CommandAction,
    ControlCommand,
    Handoff,
    NodeInbox,
    NodeInfo,
    SharedState,
    SlotLimits,
    SlotRequest,
)
from switchboard.cluster.channels import ChannelReader
from switchboard.cluster.facade import (
    MEDIA_KEY_NAME,
    Cluster,
    CommandHandler,
    HandoffHandler,
    default_node_id,
)
from switchboard.cluster.memory import MemoryHub, MemoryState

__all__ = [
    "MEDIA_KEY_NAME",
    "Admission",
    "CallDirectory",
    "CallEntry",
    "CallState",
    "ChannelReader",
    "Claims",
    "Cluster",
    "ClusterMessage",
    "ClusterTiming",
    "CommandAction",
    "CommandHandler",
    "ControlCommand",
    "Handoff",
    "HandoffHandler",
    "MemoryHub",
    "MemoryState",
    "NodeInbox",
    "NodeInfo",
    "SharedState",
    "SlotLimits",
    "SlotRequest",
    "default_node_id",
]
