"""The call bridge: pure decisions (``core``), the per-call runner (``session``), the manager.

See ``docs/architecture.md`` for one call step by step.
"""

from switchboard.bridge.core import BridgeCore, BridgeOptions
from switchboard.bridge.manager import CallManager
from switchboard.bridge.session import CallSession
from switchboard.bridge.sink import CallSink, MemorySink

__all__ = ["BridgeCore", "BridgeOptions", "CallManager", "CallSession", "CallSink", "MemorySink"]
