"""The delivery worker: sends the outbox's webhook events, retrying until they are received.

Theory of operation: one task per app (``start()`` in the lifespan, ``aclose()`` at shutdown)::

    claim due chain heads (store/outbox.py) ──▶ POST each, signed, concurrently
          ▲                                       │ 2xx: delivered
          │                                       │ else: retry at RetryPolicy.next_attempt,
          │                                       │       or failed once it is past give-up
          └── sleep until the next one is due, ◀──┘
              at most poll_interval_s, or until wake()

Everything it knows is in the database, so a restart (or another node) carries on where it
stopped: a row claimed by a worker that died is sent again when its lease lapses, with the same
``webhook-id``. Each attempt is signed afresh (a new ``webhook-timestamp``) so a receiver's
replay window does not refuse a retry that comes hours later.

What is read back from a receiver is bounded: at most ``max_response_bytes`` of the body
(kept, shortened, as the error of a failed attempt) and ``timeout_s`` for the whole attempt.
Redirects are not followed (a 3xx is a failed attempt): the URL the operator configured is the
only place a signed event goes. URLs come from the operator's configuration, never from a
caller, so they are not checked against private addresses (receivers are often internal; see
docs/integrations.md#webhook-security).
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from switchboard import __about__
from switchboard.integrations.events import redact_url
from switchboard.integrations.retry import RetryPolicy
from switchboard.integrations.signing import WebhookSecret, webhook_headers
from switchboard.integrations.worker import PollingWorker
from switchboard.store.outbox import Delivery, Outbox

__all__ = ["DeliveryWorker"]

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker(PollingWorker):
    """Sends pending webhook deliveries from an :class:`~switchboard.store.outbox.Outbox`.

    Args:
        outbox: the store's outbox.
        secret: the signing key; None sends nothing (each attempt fails with the reason, and
            is retried on the schedule, so setting the secret and restarting delivers them).
        policy: when to retry and when to give up.
        timeout_s: one attempt's time limit.
        poll_interval_s: the longest sleep between looks at the outbox.
        concurrency: deliveries sent at once (to different calls or URLs).
        max_response_bytes: how much of a receiver's answer is read.
        client: the HTTP client (not closed by :meth:`aclose`); one is made when omitted.
        clock: now, timezone-aware (tests move it).
        random: jitter source in [0, 1).
    """

    _queue_name = "webhook outbox"
    _task_name = "switchboard-webhook-delivery"

    def __init__(
        self,
        outbox: Outbox,
        *,
        secret: WebhookSecret | None,
        policy: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        poll_interval_s: float = 1.0,
        concurrency: int = 8,
        max_response_bytes: int = 4096,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = _now,
        random: Callable[[], float] = _random.random,
    ) -> None:
        super().__init__()
        self._outbox = outbox
        self._secret = secret
        self.policy = policy or RetryPolicy()
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.concurrency = max(1, concurrency)
        self.max_response_bytes = max_response_bytes
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            headers={
                "user-agent": f"switchboard/{__about__.__version__} (webhooks)",
                # raw bytes are what is read back: no decompression of a receiver's answer
                "accept-encoding": "identity",
            },
        )
        self._clock = clock
        self._random = random
        self._warned_unsigned = False
        #: Attempts made by this worker, and how many were received (2xx).
        self.attempts = 0
        self.delivered = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Stop the task (an attempt in flight is abandoned; its lease lapses and it is sent
        again later) and close the client if this worker made it."""
        await self._stop_task()
        if self._owns_client:
            await self._client.aclose()

    # -- work ------------------------------------------------------------------------------------
    @property
    def lease_s(self) -> float:
        """How long a claimed delivery is held: one attempt and a margin."""
        return 2.0 * self.timeout_s + 5.0

    async def run_once(self) -> int:
        """Claim the deliveries due now and send them; returns how many were attempted."""
        due = await self._outbox.claim_due(
            self._clock(), limit=self.concurrency, lease_s=self.lease_s
        )
        if due:
            await asyncio.gather(*(self._attempt(delivery) for delivery in due))
        return len(due)

    async def next_due(self) -> datetime | None:
        """When the next delivery is due (None: the outbox is empty)."""
        return await self._outbox.next_due()

    def _now(self) -> datetime:
        return self._clock()

    def _more_may_be_due(self, taken: int) -> bool:
        return taken >= self.concurrency  # a full batch: more may be due at once

    async def _attempt(self, delivery: Delivery) -> None:
        self.attempts += 1
        status, error = await self._post(delivery)
        now = self._clock()
        if status is not None and 200 <= status < 300:
            self.delivered += 1
            await self._outbox.delivered(delivery.id, now, status)
            logger.debug(
                "webhook %s %s → %s: %d",
                delivery.event_type,
                delivery.event_id,
                redact_url(delivery.url),
                status,
            )
            return
        retry_at = self.policy.next_attempt(
            created_at=delivery.created_at,
            failures=delivery.attempts + 1,
            now=now,
            random=self._random(),
        )
        await self._outbox.attempt_failed(
            delivery.id, now, error=error, status_code=status, retry_at=retry_at
        )
        where = redact_url(delivery.url)
        if retry_at is None:
            logger.warning(
                "webhook %s %s to %s given up after %d attempts: %s",
                delivery.event_type,
                delivery.event_id,
                where,
                delivery.attempts + 1,
                error,
            )
        else:
            logger.info(
                "webhook %s %s to %s failed (%s); retry at %s",
                delivery.event_type,
                delivery.event_id,
                where,
                error,
                retry_at.isoformat(),
            )

    async def _post(self, delivery: Delivery) -> tuple[int | None, str]:
        """(status code or None, error text) of one attempt."""
        if self._secret is None:
            if not self._warned_unsigned:
                self._warned_unsigned = True
                logger.error("SWITCHBOARD_WEBHOOK_SECRET is not set: webhooks are not sent")
            return None, "not sent: SWITCHBOARD_WEBHOOK_SECRET is not set"
        body = delivery.body.encode()
        headers = webhook_headers(self._secret, delivery.event_id, body)
        try:
            async with asyncio.timeout(self.timeout_s):
                request = self._client.build_request("POST", delivery.url, content=body)
                request.headers.update(headers)
                response = await self._client.send(request, stream=True)
                try:
                    answer = await self._read_some(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return None, f"no answer within {self.timeout_s:g} s"
        except (httpx.HTTPError, OSError) as exc:
            text = str(exc).replace(delivery.url, redact_url(delivery.url))
            return None, f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, ""
        return response.status_code, f"HTTP {response.status_code}: {answer}".rstrip(": ")

    async def _read_some(self, response: httpx.Response) -> str:
        """The start of the answer (at most ``max_response_bytes``); the rest is not read."""
        kept = bytearray()
        async for chunk in response.aiter_raw():
            kept += chunk[: self.max_response_bytes - len(kept)]
            if len(kept) >= self.max_response_bytes:
                break
        return kept.decode("utf-8", "replace").strip()
