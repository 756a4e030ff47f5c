"""Live calls as they happen: the in-process event hub and the sink that feeds it.

``GET /v1/events`` streams the hub (docs/console.md); the operator console is its main reader.
"""

from switchboard.live.hub import LiveEvent, LiveEventType, LiveHub, Subscription
from switchboard.live.sink import CallPricing, LiveSink

__all__ = ["CallPricing", "LiveEvent", "LiveEventType", "LiveHub", "LiveSink", "Subscription"]
