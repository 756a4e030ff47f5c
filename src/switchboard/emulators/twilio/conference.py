"""Twilio Conferences and Participants, as the emulator plays them.

From twilio.com/docs/voice/api/conference-resource, .../conference-participant-resource and
twilio.com/docs/voice/twiml/conference (field names checked against the ``twilio`` SDK's
``ParticipantInstance``/``ConferenceInstance``):

* a conference is created by the first ``<Dial><Conference>name`` or participant create that
  names it (``Conferences/{name}/Participants.json`` takes the friendly name); its status is
  ``init`` until a participant with ``startConferenceOnEnter`` (default true) is in it, then
  ``in-progress``, and ``completed`` when a participant with ``endConferenceOnExit`` leaves or
  the last one does (every other participant is then hung up);
* a participant create dials ``To`` (a new outbound-api Call resource with ``answered_by`` set
  when ``MachineDetection`` was asked for). The emulated destination (:class:`Callee`) is a
  person who answers after ``answer_after_s``, a machine (``answered_by`` ``machine_start``),
  or nobody: the call ends ``no-answer`` after ``Timeout`` seconds (default 30), never having
  joined;
* a participant update with ``AnnounceUrl`` fetches it (signed POST, like every Twilio
  request to an app) and plays the TwiML to that participant alone: ``<Play>`` audio is
  fetched and kept as what the participant heard (μ-law), ``<Say>`` text as what it was told;
  both take their time (the audio's length; ~65 ms a character of text), and when it is over
  the conference's status callback gets ``StatusCallbackEvent=announcement-end`` (with the
  participant's ``CallSid``) if ``announcement`` was among the
  ``ConferenceStatusCallbackEvent`` of the participant create that set
  ``ConferenceStatusCallback`` (the first one that did: the conference's).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Literal

import httpx
import numpy as np

from switchboard.audio.g711 import pcm16_to_ulaw
from switchboard.audio.resample import Resampler
from switchboard.emulators.twilio.caller import new_sid
from switchboard.emulators.twilio.signing import twilio_signature
from switchboard.emulators.twilio.twiml import TwimlError, parse_twiml

__all__ = ["Callee", "Conference", "Participant", "ring"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Callee:
    """Who a participant create reaches: ``person`` (answers), ``machine`` (answers; machine
    detection says so) or ``no_answer`` (rings until ``Timeout``)."""

    kind: Literal["person", "machine", "no_answer"] = "person"
    answer_after_s: float = 1.0


@dataclass
class Participant:
    """One call in a conference (the SDK's ``ParticipantInstance`` fields), and what the
    emulated person heard: ``heard`` (μ-law of announced ``<Play>``s), ``told`` (``<Say>``)."""

    call_sid: str
    conference: Conference
    label: str | None = None
    status: str = "queued"
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    muted: bool = False
    hold: bool = False
    heard: bytearray = field(default_factory=bytearray)
    told: list[str] = field(default_factory=list)
    announcements: list[str] = field(default_factory=list)
    #: when (monotonic) the last announcement finished playing to this participant
    announced_until: float | None = None

    def resource(self, account_sid: str) -> dict[str, Any]:
        c = self.conference
        return {
            "account_sid": account_sid,
            "call_sid": self.call_sid,
            "label": self.label,
            "call_sid_to_coach": None,
            "coaching": False,
            "conference_sid": c.sid,
            "date_created": c.date_created,
            "date_updated": formatdate(usegmt=True),
            "end_conference_on_exit": self.end_conference_on_exit,
            "muted": self.muted,
            "hold": self.hold,
            "start_conference_on_enter": self.start_conference_on_enter,
            "status": self.status,
            "queue_time": "0",
            "uri": f"/2010-04-01/Accounts/{account_sid}/Conferences/{c.sid}/Participants/"
            f"{self.call_sid}.json",
        }


@dataclass
class Conference:
    """A conference room; ``peak`` is the largest set of calls that were in it at once."""

    friendly_name: str
    sid: str = field(default_factory=lambda: new_sid("CF"))
    status: str = "init"
    date_created: str = field(default_factory=lambda: formatdate(usegmt=True))
    participants: dict[str, Participant] = field(default_factory=dict)
    peak: set[str] = field(default_factory=set)
    #: hangs up a call (CallSid) when the conference ends around it
    hang_up: Callable[[str], None] = lambda _sid: None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    #: ``ConferenceStatusCallback`` and its events (``ConferenceStatusCallbackEvent``)
    status_callback: str | None = None
    status_events: frozenset[str] = frozenset()
    #: when (monotonic) each call entered, by CallSid
    entered_at: dict[str, float] = field(default_factory=dict)

    def enter(self, p: Participant) -> None:
        p.status = "connected"
        self.participants[p.call_sid] = p
        self.entered_at[p.call_sid] = time.monotonic()
        if p.start_conference_on_enter and self.status == "init":
            self.status = "in-progress"
        if len(self.participants) > len(self.peak):
            self.peak = set(self.participants)

    def leave(self, call_sid: str) -> None:
        p = self.participants.pop(call_sid, None)
        if p is None or self.status == "completed":
            return
        p.status = "complete"
        if p.end_conference_on_exit or not self.participants:
            self.status = "completed"
            for other in list(self.participants):
                self.participants.pop(other).status = "complete"
                self.hang_up(other)
            self.ended.set()

    def resource(self, account_sid: str) -> dict[str, Any]:
        base = f"/2010-04-01/Accounts/{account_sid}/Conferences/{self.sid}"
        return {
            "account_sid": account_sid,
            "date_created": self.date_created,
            "date_updated": formatdate(usegmt=True),
            "api_version": "2010-04-01",
            "friendly_name": self.friendly_name,
            "region": "us1",
            "sid": self.sid,
            "status": self.status,
            "uri": f"{base}.json",
            "subresource_uris": {"participants": f"{base}/Participants.json"},
            "reason_conference_ended": None,
            "call_sid_ending_conference": None,
        }


async def ring(
    participant: Participant,
    call: dict[str, Any],
    callee: Callee,
    *,
    timeout_s: float,
    amd: bool,
    speed: float,
) -> None:
    """The participant's call (``call``, its Call resource) rings, then is answered (and
    joins) or ends ``no-answer``."""
    call["status"] = participant.status = "ringing"
    if callee.kind == "no_answer" or callee.answer_after_s >= timeout_s:
        await asyncio.sleep(timeout_s / speed)
        if call["status"] == "ringing":
            call.update(status="no-answer", end_time=formatdate(usegmt=True))
            participant.status = "failed"
        return
    await asyncio.sleep(callee.answer_after_s / speed)
    if call["status"] != "ringing":
        return  # canceled meanwhile
    if amd:
        call["answered_by"] = "human" if callee.kind == "person" else "machine_start"
    call.update(status="in-progress", start_time=formatdate(usegmt=True))
    participant.conference.enter(participant)


async def announce(
    participant: Participant,
    url: str,
    *,
    auth_token: str,
    account_sid: str,
    client: httpx.AsyncClient,
    violations: list[str],
    speed: float = 1.0,
) -> None:
    """Fetch ``url`` (signed POST) and play its TwiML to ``participant`` alone, taking the
    time it takes; then tell the conference's status callback (see the module docstring)."""
    params = [
        ("AccountSid", account_sid),
        ("CallSid", participant.call_sid),
        ("ConferenceSid", participant.conference.sid),
        ("FriendlyName", participant.conference.friendly_name),
    ]
    participant.announcements.append(url)
    try:
        resp = await _signed(client, url, params, auth_token)
        verbs = parse_twiml(resp.text) if resp.status_code == 200 else []
        if resp.status_code != 200:
            violations.append(f"AnnounceUrl answered HTTP {resp.status_code}")
        for verb in verbs:
            match verb.name:
                case "Play":
                    audio = _wav_ulaw((await client.get(verb.text)).content)
                    participant.heard += audio
                    await asyncio.sleep(len(audio) / 8000 / speed)
                case "Say":
                    participant.told.append(verb.text)
                    await asyncio.sleep(len(verb.text) * 0.065 / speed)
                case other:
                    violations.append(f"announcement with <{other}>")
        event = "announcement-end"
    except (httpx.HTTPError, TwimlError, wave.Error) as exc:
        violations.append(f"announcement failed: {type(exc).__name__}: {exc}")
        event = "announcement-fail"
    participant.announced_until = time.monotonic()
    conf = participant.conference
    if conf.status_callback is None or "announcement" not in conf.status_events:
        return
    params.append(("StatusCallbackEvent", event))
    params.append(("Timestamp", formatdate(usegmt=True)))
    try:
        resp = await _signed(client, conf.status_callback, params, auth_token)
    except httpx.HTTPError as exc:  # Twilio logs a failed callback; the conference goes on
        logger.info("conference status callback failed: %s", exc)
        return
    if resp.status_code >= 400:
        violations.append(f"conference status callback answered HTTP {resp.status_code}")


def _signed(
    client: httpx.AsyncClient, url: str, params: list[tuple[str, str]], token: str
) -> Awaitable[httpx.Response]:
    headers = {"X-Twilio-Signature": twilio_signature(token, url, params)}
    return client.post(url, data=dict(params), headers=headers)


def _wav_ulaw(data: bytes) -> bytes:
    """A 16-bit WAV (any rate, mono) as μ-law 8 kHz, as a phone leg hears it."""
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise wave.Error("only 16-bit mono WAV is played here")
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").tobytes()
    if rate != 8000:
        pcm = Resampler(rate, 8000).process(pcm, last=True)
    return pcm16_to_ulaw(pcm)
