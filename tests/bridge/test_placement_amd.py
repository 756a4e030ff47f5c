"""An outbound call's placement, shared between nodes, keeps its machine detection."""

from __future__ import annotations

import pytest

from switchboard.bridge.cluster_calls import placed_call, share_placement
from switchboard.bridge.planner import Placement
from switchboard.cluster import MemoryHub
from switchboard.cluster.facade import Cluster
from switchboard.telephony.amd import MachineDetection

pytestmark = pytest.mark.anyio


async def test_the_placement_read_on_another_node_keeps_machine_detection() -> None:
    hub = MemoryHub()
    here, there = Cluster.in_memory(node_id="a", hub=hub), Cluster.in_memory(node_id="b", hub=hub)
    detection = MachineDetection("leave_message", "Call us back.")
    await share_placement(here, "call_1", Placement("desk", {"x": "1"}, detection))
    await share_placement(here, "call_2", Placement("desk"))
    assert await placed_call(there, "call_1") == Placement("desk", {"x": "1"}, detection)
    assert await placed_call(there, "call_2") == Placement("desk")
