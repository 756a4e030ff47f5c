"""Telnyx: Call Control v2 webhooks (Ed25519), media-streaming codec, REST call control."""

from __future__ import annotations

import httpx

from switchboard.config import Settings
from switchboard.telephony.telnyx.media import TelnyxMediaCodec, audio_spec_for_encoding
from switchboard.telephony.telnyx.rest import CALL_ENDED_CODE, TelnyxAdapter
from switchboard.telephony.telnyx.webhooks import (
    SeenEvents,
    TelnyxEvent,
    TelnyxSignatureVerifier,
    decode_client_state,
    encode_client_state,
    parse_event,
)

__all__ = [
    "CALL_ENDED_CODE",
    "SeenEvents",
    "TelnyxAdapter",
    "TelnyxEvent",
    "TelnyxMediaCodec",
    "TelnyxSignatureVerifier",
    "audio_spec_for_encoding",
    "create_adapter",
    "decode_client_state",
    "encode_client_state",
    "parse_event",
]


def create_adapter(settings: Settings, *, client: httpx.AsyncClient | None = None) -> TelnyxAdapter:
    """The registry's factory: a :class:`TelnyxAdapter` from ``TELNYX_*`` settings."""
    return TelnyxAdapter(
        api_key=settings.secret("telnyx_api_key"),
        base_url=settings.telnyx_base_url,
        connection_id=settings.telnyx_connection_id,
        client=client,
    )
