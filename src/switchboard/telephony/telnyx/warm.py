"""The Telnyx side of a warm transfer: dial a new leg, play it the briefing, bridge.

developers.telnyx.com/docs/voice/programmable-voice (Call Control commands ``dial``,
``playback_start``, ``speak``, ``streaming_stop``, ``bridge``, ``hangup``). The caller stays on
its media stream (hearing switchboard's hold audio) while:

* the destination is dialled (``POST /v2/calls``) with ``timeout_secs`` (the ring time),
  ``answering_machine_detection: detect`` and a ``client_state`` of ``warm:<call id>`` — no
  ``stream_url``: nobody streams this leg;
* its webhooks (``call.answered``, ``call.machine.detection.ended``, ``call.hangup``) are
  recognised by that ``client_state`` and noted in :class:`WarmLegEvents` instead of being
  taken for a new call (``app/telnyx_control.py``); an answered leg is ``detecting`` until
  the detection's ``result`` comes (``human``, ``machine``, ``not_sure``; the warm plan
  waits for it a few seconds, then takes the leg for a person);
* the briefing is ``playback_start`` of our ``/telnyx/warm/<token>.wav`` on the new leg
  (without an offline voice, ``speak`` of its text); its ``call.playback.ended``
  (``call.speak.ended``) is what the join waits for;
* the join stops the caller's stream (``streaming_stop``) and ``bridge``-s the caller's leg
  with the new one: the agent leaves, caller and person talk;
* a leg given up is hung up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from switchboard.errors import ConfigError, TelephonyError
from switchboard.telephony.telnyx.rest import TelnyxAdapter
from switchboard.telephony.telnyx.webhooks import (
    TelnyxEvent,
    decode_client_state,
    encode_client_state,
)
from switchboard.telephony.warm import Briefing, LegStatus

__all__ = ["TelnyxWarmLeg", "WarmLegEvents", "is_warm_leg"]

logger = logging.getLogger(__name__)

_PREFIX = "warm:"


def is_warm_leg(event: TelnyxEvent) -> bool:
    """Whether ``event`` belongs to a warm transfer's new leg (its ``client_state``)."""
    state = decode_client_state(event.text("client_state") or None)
    return state is not None and state.startswith(_PREFIX)


@dataclass
class _LegState:
    answered_at: float | None = None
    answered_by: str | None = None
    ended: str | None = None  # the hangup cause
    played: bool = False  # the briefing's playback (or speech) ended


class WarmLegEvents:
    """What the webhooks said about each warm leg, by ``call_control_id``."""

    def __init__(self) -> None:
        self._legs: dict[str, _LegState] = {}
        #: callers' legs whose stream we stop to bridge them (no resume when it stops)
        self.leaving: set[str] = set()

    def observe(self, event: TelnyxEvent) -> None:
        """Note one webhook event of a warm leg."""
        ccid = event.call_control_id or ""
        leg = self._legs.setdefault(ccid, _LegState())
        match event.event_type:
            case "call.answered":
                leg.answered_at = time.monotonic()
            case "call.machine.detection.ended" | "call.machine.premium.detection.ended":
                leg.answered_by = event.text("result") or "not_sure"
            case "call.hangup":
                leg.ended = event.text("hangup_cause", "unspecified")
            case "call.playback.ended" | "call.speak.ended":
                leg.played = True
            case _:
                pass

    def status(self, ccid: str) -> tuple[LegStatus, str | None]:
        leg = self._legs.get(ccid, _LegState())
        if leg.ended is not None:
            return "ended", None
        if leg.answered_at is None:
            return "ringing", None
        if leg.answered_by is None:
            return "detecting", None  # answered; who it is not known yet
        return "answered", leg.answered_by

    def played(self, ccid: str) -> bool:
        """The briefing played to leg ``ccid`` has ended (Telnyx says so)."""
        leg = self._legs.get(ccid)
        return leg is not None and leg.played

    def forget(self, ccid: str) -> None:
        self._legs.pop(ccid, None)


class TelnyxWarmLeg:
    """One warm transfer's new leg on Telnyx (satisfies ``bridge.warm_transfer.WarmLeg``).

    Args:
        adapter: the app's Telnyx adapter.
        events: the app's warm-leg webhook notes.
        call_control_id: the caller's leg (bridged at the join).
        call_id: our call id (in the new leg's ``client_state``).
        from_: the caller ID the destination sees (our number on this call).
        public_url: ``SWITCHBOARD_PUBLIC_URL`` (Telnyx fetches the briefing from it).
    """

    def __init__(
        self,
        adapter: TelnyxAdapter,
        events: WarmLegEvents,
        *,
        call_control_id: str,
        call_id: str,
        from_: str,
        public_url: str | None,
    ) -> None:
        self._adapter, self._events = adapter, events
        self.caller, self.call_id, self.from_ = call_control_id, call_id, from_
        self.public_url = public_url
        self.leg: str | None = None

    async def dial(self, destination: str, *, ring_s: float) -> None:
        """Dial ``destination`` (it rings up to ``ring_s``); nothing streams it."""
        if not self.public_url:
            raise ConfigError(
                "a warm transfer on Telnyx needs SWITCHBOARD_PUBLIC_URL",
                missing=("SWITCHBOARD_PUBLIC_URL",),
            )
        self.leg = await self._adapter.place_call(
            to=destination,
            from_=self.from_,
            client_state=encode_client_state(_PREFIX + self.call_id),
            timeout_secs=max(5, min(600, round(ring_s))),
            answering_machine_detection="detect",
            webhook_url=f"{self.public_url}/telnyx/webhook",  # the leg's events reach us
        )
        logger.info("warm transfer: dialled leg %s", self.leg)

    async def poll(self) -> tuple[LegStatus, str | None]:
        assert self.leg is not None
        return self._events.status(self.leg)

    async def brief(self, token: str, briefing: Briefing) -> None:
        """Play the briefing to the new leg (our WAV, else Telnyx's voice)."""
        assert self.leg is not None
        if briefing.wav is not None:
            url = f"{self.public_url}/telnyx/warm/{token}.wav"
            await self._adapter.command(self.leg, "playback_start", {"audio_url": url})
        else:
            body = {"payload": briefing.text, "voice": "female", "language": "en-US"}
            await self._adapter.command(self.leg, "speak", body)

    def briefing_played(self) -> bool:
        return self.leg is not None and self._events.played(self.leg)

    async def join(self) -> None:
        """Stop the caller's stream (the agent leaves) and bridge caller and person."""
        assert self.leg is not None
        self._events.leaving.add(self.caller)
        await self._adapter.command(self.caller, "streaming_stop", {})
        await self._adapter.command(self.caller, "bridge", {"call_control_id": self.leg})

    async def drop(self) -> None:
        if self.leg is None:
            return
        try:
            await self._adapter.hang_up(self.leg)
        except TelephonyError as exc:
            logger.info("warm transfer: dropping leg %s: %s", self.leg, exc)
        self._events.forget(self.leg)
