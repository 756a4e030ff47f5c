"""Telnyx Call Control v2 commands over REST (``/v2/calls/{call_control_id}/actions/...``).

Vendor doc: https://developers.telnyx.com/api-reference/call-commands/answer-call and its
sibling pages (``docs/wire/telnyx.md#call-commands``). Every command carries a fresh
``command_id`` so Telnyx ignores the duplicate if a transient failure makes us send it twice
(Telnyx ignores a repeated ``command_id`` for the same call). Errors become
:class:`~switchboard.errors.TelephonyError` with the HTTP status and Telnyx's error code; the
API key never appears in a message or a log line.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, ClassVar, Literal

import httpx

from switchboard.errors import ConfigError, TelephonyError
from switchboard.telephony.telnyx.webhooks import encode_client_state

__all__ = ["CALL_ENDED_CODE", "StreamCodec", "TelnyxAdapter"]

logger = logging.getLogger(__name__)

#: Telnyx's error code for a command on a call that has already ended (pipecat treats 422 +
#: 90018 as "already hung up").
CALL_ENDED_CODE = "90018"
StreamCodec = Literal["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"]
_RETRIABLE = {429, 500, 502, 503, 504}


class TelnyxAdapter:
    """Call control for Telnyx (implements the ``TelephonyAdapter`` protocol).

    Args:
        api_key: ``TELNYX_API_KEY`` (sent as ``Authorization: Bearer``).
        base_url: ``TELNYX_BASE_URL`` without ``/v2`` (an emulator's ``base_url`` in tests).
        connection_id: ``TELNYX_CONNECTION_ID``, needed only to dial out.
        client: an injectable ``httpx.AsyncClient`` (not closed by :meth:`aclose`).
        timeout_s: per-request timeout.
        attempts: tries per command on transport errors, 429 and 5xx (same ``command_id``).
    """

    name: ClassVar[str] = "telnyx"

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = "https://api.telnyx.com",
        connection_id: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        attempts: int = 2,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.connection_id = connection_id
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self.attempts = max(1, attempts)

    # -- TelephonyAdapter ------------------------------------------------------------------------
    async def setup(self) -> None:
        """Check that an API key is configured (no network call)."""
        if not self._api_key:
            raise ConfigError("Telnyx is not configured", missing=("TELNYX_API_KEY",))

    async def answer_call(self, call_id: str, **options: Any) -> None:
        """``actions/answer``; ``options`` are body fields (``client_state``, ``stream_url``...)."""
        await self.command(call_id, "answer", options)

    async def hang_up(self, call_id: str) -> None:
        """``actions/hangup``; a call that already ended (422, code 90018) counts as success."""
        try:
            await self.command(call_id, "hangup", {})
        except TelephonyError as exc:
            if exc.code == CALL_ENDED_CODE or exc.status == 404:
                logger.info("Telnyx call %s had already ended", call_id)
                return
            raise

    async def reject_call(self, call_id: str, *, cause: str = "USER_BUSY") -> None:
        """``actions/reject``: refuse an incoming call before answering it (``USER_BUSY`` gives
        the caller a busy signal, ``CALL_REJECTED`` a rejection)."""
        await self.command(call_id, "reject", {"cause": cause})

    async def transfer_call(self, call_id: str, destination: str) -> None:
        """``actions/transfer`` to a phone number or SIP URI."""
        await self.command(call_id, "transfer", {"to": destination})

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """``actions/send_dtmf`` (digits 0-9, *, #, A-D, w/W pauses)."""
        await self.command(call_id, "send_dtmf", {"digits": digits})

    async def place_call(self, *, to: str, from_: str, **options: Any) -> str:
        """``POST /v2/calls`` on ``TELNYX_CONNECTION_ID``; returns the new ``call_control_id``.

        ``options`` are extra body fields (``client_state``, ``stream_url``, ``timeout_secs``...),
        except ``call_id``: our call id, which Telnyx has no field for, travels as the
        ``client_state`` it echoes on the call's webhooks (unless one is given).
        """
        connection_id = options.pop("connection_id", None) or self.connection_id
        if not connection_id:
            raise ConfigError("dialling out needs a connection", missing=("TELNYX_CONNECTION_ID",))
        if (call_id := options.pop("call_id", None)) is not None:
            options.setdefault("client_state", encode_client_state(call_id))
        body = {"connection_id": connection_id, "to": to, "from": from_, **options}
        data = await self._post("/v2/calls", body, action="dial")
        try:
            return str(data["data"]["call_control_id"])
        except (KeyError, TypeError) as exc:
            raise TelephonyError("Telnyx dial answer has no call_control_id") from exc

    @property
    def is_closed(self) -> bool:
        """Whether the HTTP client is closed (an injected client only by its owner)."""
        return self._client.is_closed

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    # -- streaming -------------------------------------------------------------------------------
    async def start_streaming(
        self,
        call_id: str,
        *,
        stream_url: str,
        codec: StreamCodec = "PCMU",
        sample_rate: int = 8000,
        track: str = "inbound_track",
        client_state: str | None = None,
    ) -> None:
        """``actions/streaming_start`` bidirectional in ``rtp`` mode (never the mp3 default).

        ``codec`` is used both ways (``stream_codec`` and ``stream_bidirectional_codec``).
        """
        body: dict[str, Any] = {
            "stream_url": stream_url,
            "stream_track": track,
            "stream_codec": codec,
            "stream_bidirectional_mode": "rtp",
            "stream_bidirectional_codec": codec,
            "stream_bidirectional_sampling_rate": sample_rate,
        }
        if client_state is not None:
            body["client_state"] = client_state
        await self.command(call_id, "streaming_start", body)

    async def stop_streaming(self, call_id: str, *, stream_id: str | None = None) -> None:
        """``actions/streaming_stop``."""
        await self.command(call_id, "streaming_stop", {"stream_id": stream_id} if stream_id else {})

    async def call_is_alive(self, call_id: str) -> bool:
        """``GET /v2/calls/{call_control_id}``: whether the call is still up at Telnyx
        (``is_alive``); False for a call Telnyx no longer knows.

        Raises:
            TelephonyError: Telnyx could not be asked.
        """
        if not self._api_key:
            raise ConfigError("Telnyx is not configured", missing=("TELNYX_API_KEY",))
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        try:
            url = f"{self.base_url}/v2/calls/{call_id}"
            response = await self._client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise TelephonyError(f"Telnyx call status failed: {type(exc).__name__}") from exc
        if response.status_code in (404, 422):
            return False
        if not response.is_success:
            raise TelephonyError(
                f"Telnyx call status failed: HTTP {response.status_code}",
                status=response.status_code,
            )
        try:
            return bool(response.json()["data"]["is_alive"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TelephonyError("Telnyx call status unreadable") from exc

    # -- plumbing --------------------------------------------------------------------------------
    async def command(self, call_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one call command; returns Telnyx's answer (``{"data": {"result": "ok"}}``)."""
        payload = {"command_id": str(uuid.uuid4()), **body}
        return await self._post(f"/v2/calls/{call_id}/actions/{action}", payload, action=action)

    async def _post(self, path: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
        if not self._api_key:
            raise ConfigError("Telnyx is not configured", missing=("TELNYX_API_KEY",))
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        response: httpx.Response | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post(self.base_url + path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                if attempt < self.attempts:
                    logger.warning("Telnyx %s: %s; retrying", action, type(exc).__name__)
                    continue
                raise TelephonyError(f"Telnyx {action} failed: {type(exc).__name__}") from exc
            if response.status_code in _RETRIABLE and attempt < self.attempts:
                logger.warning("Telnyx %s: HTTP %d; retrying", action, response.status_code)
                continue
            break
        assert response is not None
        logger.debug("Telnyx %s -> %d", action, response.status_code)
        if response.is_success:
            try:
                data = response.json()
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        code, title = _error_of(response)
        raise TelephonyError(
            f"Telnyx {action} failed: HTTP {response.status_code}"
            + (f" code {code}" if code else "")
            + (f": {title}" if title else ""),
            status=response.status_code,
            code=code,
        )


def _error_of(response: httpx.Response) -> tuple[str | None, str | None]:
    """``{"errors": [{"code": "90018", "title": "...", "detail": "..."}]}`` → (code, text)."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        code = first.get("code")
        text = first.get("detail") or first.get("title")
        return (None if code is None else str(code)), (None if text is None else str(text))
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        return None, None
