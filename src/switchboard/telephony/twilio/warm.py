"""The Twilio side of a warm transfer: a conference, the destination as a participant.

twilio.com/docs/voice/api/conference-participant-resource. The caller stays on its media
stream (hearing switchboard's hold audio) while the destination is dialled into a conference
of its own, named ``warm-<call id>``, through the Participants API with ``Timeout`` (the ring
time) and ``MachineDetection=Enable`` (so the leg's ``answered_by`` says who answered). Then:

* the leg's Call resource is polled (``status``, ``answered_by``): no webhook has to reach
  this node, which is the one holding the caller's stream;
* the briefing is announced to the participant alone: participant update with
  ``AnnounceUrl`` (our ``/twilio/warm/<token>``, which answers ``<Play>`` of the briefing);
  its end is the conference's ``announcement-end`` status callback
  (``ConferenceStatusCallbackEvent=announcement`` at the participant's create, to our
  ``/twilio/warm/status``; noted in :class:`~switchboard.telephony.warm.Briefings` by the
  leg's CallSid), which the join waits for;
* the join moves the caller into the conference: call update with
  ``Twiml=<Dial><Conference endConferenceOnExit="true">warm-…</Conference></Dial>``, which
  ends the caller's media stream — the agent leaves;
* a leg given up is hung up (``Status=canceled`` while it rings, ``completed`` after).
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from switchboard.errors import ConfigError, TelephonyError
from switchboard.telephony.twilio.rest import TwilioAdapter
from switchboard.telephony.warm import Briefing, Briefings, LegStatus

__all__ = ["TwilioWarmLeg", "conference_twiml", "leg_status"]

logger = logging.getLogger(__name__)

_RINGING = {"queued", "initiated", "ringing"}


def conference_twiml(room: str) -> str:
    """TwiML that puts a call into conference ``room``; the conference ends when it leaves."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Dial>'
        '<Conference beep="false" startConferenceOnEnter="true" endConferenceOnExit="true">'
        f"{escape(room)}</Conference></Dial></Response>"
    )


def leg_status(status: str) -> LegStatus:
    """A Twilio call status as the warm plan sees it."""
    if status in _RINGING:
        return "ringing"
    if status == "in-progress":
        return "answered"
    return "ended"  # busy, failed, no-answer, canceled, completed


class TwilioWarmLeg:
    """One warm transfer's new leg on Twilio (satisfies ``bridge.warm_transfer.WarmLeg``).

    Args:
        adapter: the app's Twilio adapter.
        call_sid: the caller's CallSid (moved into the conference at the join).
        room: the conference's friendly name.
        from_: the caller ID the destination sees (our number on this call).
        briefings: where the ``announcement-end`` callbacks are noted (None: never heard of).
    """

    def __init__(
        self,
        adapter: TwilioAdapter,
        *,
        call_sid: str,
        room: str,
        from_: str,
        briefings: Briefings | None = None,
    ) -> None:
        self._adapter = adapter
        self._briefings = briefings
        self.call_sid, self.room, self.from_ = call_sid, room, from_
        self.leg_sid: str | None = None
        self.conference_sid: str | None = None
        self._last = "queued"

    async def dial(self, destination: str, *, ring_s: float) -> None:
        """Dial ``destination`` into the conference (it rings up to ``ring_s``).

        Raises:
            ConfigError: no ``SWITCHBOARD_PUBLIC_URL`` for the briefing (checked before
                anything is dialled).
        """
        if not self._adapter.public_url:
            raise ConfigError(
                "a warm transfer on Twilio needs SWITCHBOARD_PUBLIC_URL",
                missing=("SWITCHBOARD_PUBLIC_URL",),
            )
        params = [
            ("From", self.from_),
            ("To", destination),
            ("Label", "warm-transfer"),
            ("Timeout", str(max(5, min(600, round(ring_s))))),
            ("MachineDetection", "Enable"),
            ("StartConferenceOnEnter", "true"),
            ("EndConferenceOnExit", "false"),
            ("Beep", "false"),
            ("ConferenceStatusCallback", f"{self._adapter.public_url}/twilio/warm/status"),
            ("ConferenceStatusCallbackMethod", "POST"),
            ("ConferenceStatusCallbackEvent", "announcement"),
        ]
        participant = await self._adapter.add_participant(self.room, params)
        self.leg_sid = str(participant["call_sid"])
        self.conference_sid = str(participant["conference_sid"])
        logger.info("warm transfer: dialled leg %s into %s", self.leg_sid, self.conference_sid)

    async def poll(self) -> tuple[LegStatus, str | None]:
        """The leg's state and, once answered, who answered (``human``, ``machine_start``...)."""
        assert self.leg_sid is not None
        call = await self._adapter.fetch_call(self.leg_sid)
        self._last = str(call.get("status") or "queued")
        answered_by = call.get("answered_by")
        status = leg_status(self._last)
        if status == "answered" and not answered_by:
            return "detecting", None  # MachineDetection still listening
        return status, str(answered_by) if answered_by else None

    async def brief(self, token: str, briefing: Briefing) -> None:
        """Announce the briefing stored under ``token`` to the participant alone (our TwiML
        plays its WAV, or says its text)."""
        assert self.leg_sid is not None and self.conference_sid is not None
        url = f"{self._adapter.public_url}/twilio/warm/{token}"
        await self._adapter.update_participant(
            self.conference_sid, self.leg_sid, AnnounceUrl=url, AnnounceMethod="POST"
        )

    def briefing_played(self) -> bool:
        """Twilio's ``announcement-end`` (or ``-fail``) for this leg has come."""
        if self._briefings is None or self.leg_sid is None:
            return False
        return self._briefings.played(self.leg_sid) is not None

    async def join(self) -> None:
        """Move the caller into the conference (its media stream ends: the agent leaves)."""
        await self._adapter.update_call(self.call_sid, Twiml=conference_twiml(self.room))

    async def drop(self) -> None:
        """Hang the leg up (best effort: it may have ended on its own)."""
        if self.leg_sid is None:
            return
        status = "canceled" if self._last in _RINGING else "completed"
        try:
            await self._adapter.update_call(self.leg_sid, Status=status)
        except TelephonyError as exc:
            logger.info("warm transfer: dropping leg %s: %s", self.leg_sid, exc)
