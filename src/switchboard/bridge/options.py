"""The tunables of one call's bridge, which the call manager fills from the agent's limits."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.bridge.turn_taking import TurnTakingOptions

__all__ = ["BridgeOptions"]


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    """Tunables of one call's bridge (times in milliseconds; None disables a timer)."""

    frame_ms: int = 20
    max_lead_ms: int = 200
    #: When the carrier's lead falls below ``max_lead_ms`` the core releases this much at once
    #: (two frames by default): half the wakeups of one frame at a time, and the frames go as
    #: one message where the carrier allows (``MediaCodec.joins_frames``). The lead then stays
    #: between ``max_lead_ms`` and ``max_lead_ms + release_ms``.
    release_ms: int = 40
    #: How far behind its reply's timeline the core may fall and still catch up (send the
    #: frames already due at once); beyond it the timeline restarts that much behind now.
    max_catch_up_ms: float = 5000
    mark_interval_ms: int = 200
    barge_in: bool = True
    silence_timeout_ms: float | None = None
    silence_hangup_ms: float | None = None
    max_call_ms: float | None = None
    reprompt_text: str = "Are you still there?"
    goodbye_text: str = "I'm sorry, we have reached the time limit for this call. Goodbye!"
    #: How long a pending hang-up or transfer waits for the goodbye to play.
    control_grace_ms: float = 10_000
    #: Backchannel-aware barge-in and false-interruption recovery (``bridge/turn_taking.py``);
    #: None: any caller speech over agent audio interrupts at once.
    turn_taking: TurnTakingOptions | None = None
