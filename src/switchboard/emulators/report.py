"""What an emulated carrier call reports: the facts both carriers share, under one set of names.

The Twilio caller's :class:`~switchboard.emulators.twilio.state.TwilioCallReport` and the Telnyx
emulator's :class:`~switchboard.emulators.telnyx.report.TelnyxCallReport` extend
:class:`CallReport` with their carrier's own ids and details, so a test or the load tool reads
``heard_ms`` or ``call_ms`` the same way whichever carrier carried the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CallReport"]


@dataclass(kw_only=True, slots=True)
class CallReport:
    """What happened on one emulated call, from the network's side.

    Attributes:
        call_ms: call time from the call's start (Twilio: the caller dialling; Telnyx:
            ``call.initiated``) to its end, on the call's clock.
        stream_ms: call time the media stream ran.
        frames_sent / frames_received: media frames caller→app / app→caller (20 ms of audio
            each: a message carrying several counts for each).
        clears: ``clear`` messages honoured.
        heard_ms: milliseconds of app audio actually played to the caller.
        webhooks: ``(event or status, HTTP status)`` of each webhook the carrier delivered, in
            order (Twilio: status callbacks, 0 for one that could not be delivered; Telnyx: Call
            Control events).
        violations: protocol violations by the app (tests assert this is empty).
    """

    call_ms: float = 0.0
    stream_ms: float = 0.0
    frames_sent: int = 0
    frames_received: int = 0
    clears: int = 0
    heard_ms: float = 0.0
    webhooks: list[tuple[str, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
