"""Twilio: voice webhooks + TwiML (``webhooks``), Media Streams codec (``media``), REST (``rest``).

The registry finds the adapter as ``switchboard.telephony.twilio:create_adapter``.
"""

from __future__ import annotations

import httpx

from switchboard.config import Settings
from switchboard.telephony.twilio.media import TWILIO_AUDIO, TwilioMediaCodec
from switchboard.telephony.twilio.rest import TwilioAdapter

__all__ = ["TWILIO_AUDIO", "TwilioAdapter", "TwilioMediaCodec", "create_adapter"]


def create_adapter(settings: Settings, *, client: httpx.AsyncClient | None = None) -> TwilioAdapter:
    """A :class:`TwilioAdapter` configured from ``settings`` (call ``await adapter.setup()``)."""
    return TwilioAdapter(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.secret("twilio_auth_token"),
        base_url=settings.twilio_base_url,
        public_url=settings.public_url,
        client=client,
    )
