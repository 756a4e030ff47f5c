"""What the carriers fetch to brief the person who answers a warm transfer.

The warm transfer (``bridge/warm_transfer.py``, ``telephony/twilio/warm.py``) sets the new
participant's ``AnnounceUrl`` to ``POST /twilio/warm/{token}``: a signed Twilio request,
answered with TwiML that plays the briefing — ``<Play>`` of ``GET /twilio/warm/{token}.wav``
(the offline voice's audio) or, without an offline voice, ``<Say>`` of its text. The token is
unguessable and lives only while its transfer runs (``telephony/warm.py``). Telnyx's
``playback_start`` fetches ``GET /telnyx/warm/{token}.wav`` (``telephony/telnyx/warm.py``).
``POST /twilio/warm/status`` is the warm conference's status callback: its
``announcement-end`` tells the warm transfer the briefing has played.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response

from switchboard.app.state import get_state
from switchboard.app.twilio import _verified_form  # the voice webhook's signature check

__all__ = ["warm_router"]

warm_router = APIRouter(include_in_schema=False)
_XML = "application/xml"


@warm_router.post("/twilio/warm/status")
async def conference_status(request: Request) -> Response:
    """A warm transfer's conference status callback (signed): ``announcement-end`` (or
    ``-fail``) says the briefing announced to the leg ``CallSid`` is over: the join goes on."""
    state = get_state(request)
    verified = await _verified_form(request, state)
    if isinstance(verified, str):
        return Response("forbidden", status_code=403, media_type="text/plain")
    form, _key = verified
    event, leg = str(form.get("StatusCallbackEvent") or ""), str(form.get("CallSid") or "")
    if event in ("announcement-end", "announcement-fail") and leg:
        state.gateway.briefings.note_played(leg, event)
    return Response(status_code=204)


@warm_router.post("/twilio/warm/{token}")
async def announce(token: str, request: Request) -> Response:
    """The briefing as TwiML (Twilio's ``AnnounceUrl`` request)."""
    state = get_state(request)
    verified = await _verified_form(request, state)
    if isinstance(verified, str):
        return Response("forbidden", status_code=403, media_type="text/plain")
    briefing = state.gateway.briefings.get(token)
    if briefing is None:
        return Response("not found", status_code=404, media_type="text/plain")
    if briefing.wav is not None:
        base = state.gateway.settings.public_url or ""
        verb = f"<Play>{escape(f'{base}/twilio/warm/{token}.wav')}</Play>"
    else:
        verb = f"<Say>{escape(briefing.text)}</Say>"
    twiml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{verb}</Response>'
    return Response(twiml, media_type=_XML)


@warm_router.get("/twilio/warm/{token}.wav")
@warm_router.get("/telnyx/warm/{token}.wav")
async def briefing_audio(token: str, request: Request) -> Response:
    """The briefing's audio (16-bit 8 kHz WAV), for Twilio's ``<Play>`` above or Telnyx's
    ``playback_start``."""
    briefing = get_state(request).gateway.briefings.get(token)
    if briefing is None or briefing.wav is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(briefing.wav, media_type="audio/wav")
