"""The emulator's webhook sender: Ed25519-signed deliveries, in order, one at a time.

Telnyx signs ``f"{timestamp}|{raw body}"`` with the account's Ed25519 key and sends the base64
signature in ``telnyx-signature-ed25519`` and the Unix seconds in ``telnyx-timestamp``
(https://developers.telnyx.com/docs/development/sdk/python/webhooks,
``docs/wire/telnyx.md#webhook-signature``). The emulator owns its own key pair;
``public_key_b64`` is what the app needs as ``TELNYX_PUBLIC_KEY``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["Delivery", "WebhookSender"]

logger = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One webhook to deliver; ``done`` resolves with the HTTP status (0: unreachable)."""

    url: str
    event_type: str
    payload: dict[str, Any]
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


#: delivery outcomes retried: no answer at all, or the balancer's bad gateway / timeout
_RETRIED = frozenset({0, 502, 504})


class WebhookSender:
    """Sign and POST webhooks sequentially (Telnyx does not promise order; we keep it).

    Args:
        private_key_b64: base64 of a 32-byte Ed25519 seed; a fresh key when None.
        duplicate: deliver every webhook twice (same id, ``meta.attempt`` 2), as retries do.
        clock_skew_s: added to the signed timestamp (tests of the replay window).
    """

    def __init__(
        self,
        *,
        private_key_b64: str | None = None,
        duplicate: bool = False,
        clock_skew_s: float = 0,
    ) -> None:
        if private_key_b64:
            self._key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64))
        else:
            self._key = Ed25519PrivateKey.generate()
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key_b64 = base64.b64encode(raw).decode("ascii")
        self.duplicate = duplicate
        self.clock_skew_s = clock_skew_s
        #: pauses before the retries of a delivery that failed (no answer, 502, 504)
        self.retry_delays_s: tuple[float, ...] = (0.1, 0.3, 1.0)
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Headers authenticating ``body``: signature, timestamp and content type."""
        ts = str(int(time.time() + self.clock_skew_s) if timestamp is None else timestamp)
        signature = self._key.sign(ts.encode() + b"|" + body)
        return {
            "telnyx-signature-ed25519": base64.b64encode(signature).decode("ascii"),
            "telnyx-timestamp": ts,
            "content-type": "application/json",
        }

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=10.0)
        self._task = asyncio.create_task(self._deliver_forever())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.done.done():
                pending.done.set_result(0)

    def send(
        self, url: str | None, event_type: str, payload: dict[str, Any]
    ) -> asyncio.Future[int]:
        """Queue one event; the future resolves with the HTTP status once delivered."""
        delivery = Delivery(url or "", event_type, payload)
        if not url:
            logger.warning("no webhook URL for %s: not delivered", event_type)
            delivery.done.set_result(0)
        else:
            self._queue.put_nowait(delivery)
        return delivery.done

    async def _deliver_forever(self) -> None:
        while True:
            delivery = await self._queue.get()
            event_id = str(uuid.uuid4())
            status = 0
            for attempt in range(1, 3 if self.duplicate else 2):
                status = await self._post(delivery, event_id, attempt) or status
            # Telnyx retries a delivery that did not reach the app (the node behind the URL
            # died, the balancer had no answer): same event id, next attempt number
            retry = 2 if not self.duplicate else 3
            for delay in self.retry_delays_s:
                if status not in _RETRIED:
                    break
                await asyncio.sleep(delay)
                status = await self._post(delivery, event_id, retry) or status
                retry += 1
            if not delivery.done.done():
                delivery.done.set_result(status)

    async def _post(self, delivery: Delivery, event_id: str, attempt: int) -> int:
        occurred = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        doc = {
            "data": {
                "record_type": "event",
                "event_type": delivery.event_type,
                "id": event_id,
                "occurred_at": occurred,
                "payload": delivery.payload,
            },
            "meta": {"attempt": attempt, "delivered_to": delivery.url},
        }
        body = json.dumps(doc).encode()
        assert self._client is not None
        try:
            response = await self._client.post(delivery.url, content=body, headers=self.sign(body))
        except httpx.HTTPError as exc:
            logger.warning("webhook %s to %s failed: %s", delivery.event_type, delivery.url, exc)
            return 0
        logger.debug("webhook %s -> %d", delivery.event_type, response.status_code)
        return response.status_code
