"""A live call as the call manager tracks it, and how one call's bridge is set up.

:class:`ActiveCall` is what the manager holds between ``prepare`` and the call's end. The
functions here are the pure part of bridging a call: the caller audio format a carrier and an
agent give, the :class:`BridgeOptions` an agent's limits give, and the agent's recorded
greeting in the carrier's format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from switchboard.agents import Agent
from switchboard.bridge.core import BridgeOptions
from switchboard.bridge.greeting import greeting_audio
from switchboard.bridge.recording import CallRecordSink
from switchboard.bridge.resume_state import CarriedState
from switchboard.bridge.session import CallSession
from switchboard.bridge.turn_taking import TurnTakingOptions
from switchboard.errors import AudioError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.metrics import MetricsSink
from switchboard.providers.base import BaseProvider
from switchboard.telephony.amd import MachineDetection, Verdict
from switchboard.telephony.base import IncomingCall, TelephonyAdapter, TelephonyType
from switchboard.tools import ToolRegistry

__all__ = [
    "ActiveCall",
    "BoundCarrierControl",
    "BridgeOverrides",
    "bridge_options",
    "caller_audio",
    "recorded_greeting",
    "recorded_thinking",
]

logger = logging.getLogger(__name__)

#: Adjusts the :class:`BridgeOptions` every call of a manager gets (tests shorten timers:
#: ``lambda options: dataclasses.replace(options, control_grace_ms=500)``).
BridgeOverrides = Callable[[BridgeOptions], BridgeOptions]


@dataclass
class ActiveCall:
    """A call between ``prepare`` and its end.

    Attributes:
        sink: the call's record sink (None when the store is down or there is none).
        metered: the metrics sink over it while the call is bridged (None without metrics).
    """

    call_id: str
    incoming: IncomingCall
    agent: Agent
    provider_name: str
    provider: BaseProvider
    tools: ToolRegistry
    connect_task: asyncio.Task[None]
    created_at: float = field(default_factory=time.time)
    session: CallSession | None = None
    status: str = "ringing"
    sink: CallRecordSink | None = None
    metered: MetricsSink | None = None
    ending: bool = False
    #: an outbound call's answering-machine detection, and verdicts that came before media
    machine_detection: MachineDetection | None = None
    early_verdicts: list[tuple[Verdict, str]] = field(default_factory=list)
    #: a resumed call's state from the node that held it (bridge/resume_state.py)
    carried: CarriedState | None = None

    def summary(self) -> dict[str, Any]:
        """What ``GET /v1/sessions`` shows of a live call."""
        return {
            "call_id": self.call_id,
            "carrier": self.incoming.carrier.value,
            "carrier_call_id": self.incoming.carrier_call_id,
            "direction": self.incoming.direction.value,
            "from": self.incoming.from_number,
            "to": self.incoming.to_number,
            "agent": self.agent.name,
            "provider": self.provider_name,
            "model": self.provider.config.model_id,
            "status": self.status,
            "provider_state": self.provider.state.value,
            "started_at": self.created_at,
            "barge_ins": self.session.core.barge_ins if self.session else 0,
            "turns": self.session.core.turn if self.session else 0,
        }


class BoundCarrierControl:
    """Carrier REST operations for one call (the ids bound)."""

    def __init__(self, adapter: TelephonyAdapter, carrier_call_id: str) -> None:
        self._adapter = adapter
        self._id = carrier_call_id

    async def hang_up(self) -> None:
        await self._adapter.hang_up(self._id)

    async def transfer(self, destination: str) -> None:
        await self._adapter.transfer_call(self._id, destination)

    async def send_dtmf(self, digits: str) -> None:
        # On Twilio this redirects the call, which stops its media stream: the session wraps
        # this control in bridge/restream.py's SplicingControl to go on with the next stream.
        await self._adapter.send_dtmf(self._id, digits)


def caller_audio(carrier: TelephonyType, provider: str, codec: str | None = None) -> AudioSpec:
    """The caller audio the bridge sees: μ-law 8 kHz, or on Telnyx the agent's
    ``carrier_codec`` (A-law 8 kHz; L16, Opus and G.722 arrive as PCM16 16 kHz), by default
    L16 16 kHz for Gemini."""
    if carrier is TelephonyType.TELNYX:
        if codec == "pcma":
            return AudioSpec(AudioFormat.ALAW, 8000)
        if codec in ("l16", "opus", "g722") or (codec is None and provider == "gemini"):
            return AudioSpec(AudioFormat.PCM16, 16000)
    return AudioSpec(AudioFormat.ULAW, 8000)


def bridge_options(
    agent: Agent, carrier_max_s: int | None, overrides: BridgeOverrides | None = None
) -> BridgeOptions:
    """The bridge options of one call of ``agent`` on a carrier that cuts calls at
    ``carrier_max_s`` (None: no limit); the shorter of the two limits ends the call."""
    limits = agent.limits
    max_s = [s for s in (limits.max_call_seconds, carrier_max_s) if s]
    options = BridgeOptions(
        barge_in=agent.barge_in,
        silence_timeout_ms=limits.silence_timeout_s * 1000 if limits.silence_timeout_s else None,
        silence_hangup_ms=limits.silence_hangup_s * 1000 if limits.silence_hangup_s else None,
        max_call_ms=min(max_s) * 1000 if max_s else None,
        reprompt_text=agent.reprompt or "Are you still there?",
        goodbye_text=agent.goodbye,
        turn_taking=turn_taking_options(agent),
    )
    return options if overrides is None else overrides(options)


def turn_taking_options(agent: Agent) -> TurnTakingOptions | None:
    """The bridge's turn-taking settings for ``agent`` (None: speech interrupts at once)."""
    tt = agent.turn_taking
    if not (agent.barge_in and tt.enabled):
        return None
    return TurnTakingOptions(
        min_interrupt_ms=tt.min_interrupt_ms,
        min_interrupt_words=tt.min_interrupt_words,
        backchannels=frozenset(tt.backchannels),
        language=agent.language,
        false_interruption_ms=tt.false_interruption_ms,
        resume=tt.resume,
    )


def recorded_greeting(
    agent: Agent, spec: AudioSpec, call_id: str
) -> tuple[bytes, str | None] | None:
    """The agent's ``greeting_audio`` in the carrier's format (None: none, or unreadable)."""
    if agent.greeting_audio is None:
        return None
    try:
        return greeting_audio(agent.greeting_audio, spec), agent.greeting
    except (AudioError, OSError) as exc:  # checked at load; gone or broken since
        logger.error("call %s: greeting audio unusable: %s", call_id, exc)
        return None


def recorded_thinking(
    agent: Agent, spec: AudioSpec, call_id: str, *, what: str = "thinking"
) -> bytes | None:
    """The agent's ``thinking_audio`` (``what="hold"``: ``hold_audio``) in the carrier's
    format (None: none, or unreadable, and the generated sound plays)."""
    path = agent.hold_audio if what == "hold" else agent.thinking_audio
    if path is None:
        return None
    try:
        return greeting_audio(path, spec)
    except (AudioError, OSError) as exc:
        logger.error("call %s: %s audio unusable: %s", call_id, what, exc)
        return None
