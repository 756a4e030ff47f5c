"""Twilio emulator: a fake REST API (:class:`TwilioEmulator`) and a simulated caller.

The caller (:class:`TwilioCaller`, :func:`run_call`) plays Twilio's part of a phone call against
an app: signed voice webhook, TwiML, signed media-stream upgrade, μ-law frames on a 20 ms clock,
marks/clear honoured, what it heard recorded. Written from ``docs/wire/twilio.md`` (vendor page:
https://www.twilio.com/docs/voice/media-streams/websocket-messages), independent of
``switchboard.telephony.twilio``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switchboard.emulators.playout import Playout
from switchboard.emulators.twilio.caller import TwilioCaller, load_ulaw, write_ulaw_wav
from switchboard.emulators.twilio.conference import Callee
from switchboard.emulators.twilio.server import RecordedRequest, TwilioEmulator, run
from switchboard.emulators.twilio.signing import twilio_signature
from switchboard.emulators.twilio.state import TwilioCallReport

__all__ = [
    "Callee",
    "Playout",
    "RecordedRequest",
    "TwilioCallReport",
    "TwilioCaller",
    "TwilioEmulator",
    "load_ulaw",
    "run",
    "run_call",
    "twilio_signature",
    "write_ulaw_wav",
]


async def run_call(
    *,
    server: str,
    audio: Path | None,
    out: Path | None,
    realtime: bool = True,
    **options: Any,
) -> TwilioCallReport:
    """Place one simulated inbound call to the switchboard app at ``server``.

    Args:
        server: the app's base URL as Twilio reaches it (``SWITCHBOARD_PUBLIC_URL``), e.g.
            ``http://127.0.0.1:8000``; the webhook is ``{server}/twilio/voice``.
        audio: a WAV file the caller speaks (any rate; None: one second of silence).
        out: where to write what the caller heard (WAV, 8 kHz, silence where nothing played).
        realtime: False runs the call clock ``speed`` (default 10) times faster.

    Keyword Args:
        auth_token: the app's ``TWILIO_AUTH_TOKEN`` (required).
        speed, linger_s, max_call_s, dtmf, from_, to, account_sid, sign_upgrade: see
            :class:`TwilioCaller`. ``status_url`` defaults to ``{server}/twilio/status``.
    """
    token = options.pop("auth_token", None)
    if not token:
        raise ValueError("run_call needs auth_token= (the app's TWILIO_AUTH_TOKEN)")
    base = server.rstrip("/")
    speed = float(options.pop("speed", 1.0 if realtime else 10.0))
    caller = TwilioCaller(
        webhook_url=options.pop("webhook_url", f"{base}/twilio/voice"),
        auth_token=str(token),
        audio=load_ulaw(audio),
        status_url=options.pop("status_url", f"{base}/twilio/status"),
        speed=speed,
        out=Path(out) if out is not None else None,
        **options,
    )
    return await caller.run()
