"""Per-source throttling of failed signature checks (docs/security.md), over loopback.

After SWITCHBOARD_SIGNATURE_FAILURE_LIMIT failed checks from one address within the window,
that address is refused unchecked — 429 with Retry-After on the webhooks, close 1008 on the
media sockets — and the refusals are counted in ``switchboard_signature_throttled``; another
address is not affected, and the first is let in again once its failures leave the window.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from tests.conftest import UNIT
from tests.recording_calls import RecordingCalls
from tests.waiting import eventually_async
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from switchboard.app.factory import create_app
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer, bind_loopback
from switchboard.emulators.twilio import twilio_signature

pytestmark = pytest.mark.anyio
TOKEN = "twilio-auth-token-for-the-throttle-test"
METRICS = "metrics-token-for-the-throttle-tests-0123456789"
FORM = {"CallSid": "CA" + "b" * 32, "CallStatus": "ringing", "From": "+15550001", "To": "+1555002"}


@asynccontextmanager
async def serve(window_s: float) -> AsyncIterator[str]:
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_settings(
        TWILIO_AUTH_TOKEN=TOKEN,
        SWITCHBOARD_PUBLIC_URL=base,
        SWITCHBOARD_METRICS_TOKEN=METRICS,
        SWITCHBOARD_SIGNATURE_FAILURE_LIMIT="3",
        SWITCHBOARD_SIGNATURE_FAILURE_WINDOW_S=str(window_s),
        TELNYX_API_KEY="KEY-throttle",
        TELNYX_PUBLIC_KEY="6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=",
    )
    app = create_app(settings, calls=RecordingCalls())
    async with LoopbackServer(app, sock=sock, lifespan="off"):
        yield base


def _client(base: str, source: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)  # 127.0.0.0/8 is all loopback
    return httpx.AsyncClient(base_url=base, transport=transport, timeout=5 * UNIT)


async def _status(http: httpx.AsyncClient, signature: str) -> httpx.Response:
    return await http.post(
        "/twilio/status", data=FORM | {"SequenceNumber": signature[:4]},
        headers={"X-Twilio-Signature": signature},
    )  # fmt: skip


def _signed(base: str, sequence: str) -> str:
    params = (FORM | {"SequenceNumber": sequence}).items()
    return twilio_signature(TOKEN, f"{base}/twilio/status", params)


async def _socket_close(url: str) -> tuple[int | None, str | None]:
    async with connect(url) as ws:
        with anyio.fail_after(5 * UNIT), contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason


async def test_a_source_that_keeps_failing_is_refused_unchecked_then_let_in_again() -> None:
    async with serve(window_s=2.0 * UNIT) as base, _client(base, "127.0.0.2") as bad:
        for _ in range(3):
            assert (await _status(bad, "forged")).status_code == 403
        refused = await _status(bad, "forged")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 3 * UNIT
        assert refused.json()["error"]["status"] == 429
        # Unchecked means unchecked: even a correct signature waits out the window.
        good = await bad.post(
            "/twilio/status", data=FORM | {"SequenceNumber": "1"},
            headers={"X-Twilio-Signature": _signed(base, "1")},
        )  # fmt: skip
        assert good.status_code == 429
        # The media sockets refuse the source too (Twilio's and Telnyx's), before any check.
        ws = "ws" + base[4:]
        with anyio.fail_after(5 * UNIT):
            # websockets connects from the default source address, 127.0.0.1: not throttled
            assert (await _socket_close(f"{ws}/telnyx/media?token=x.y"))[0] == 1008
        # Another address is not affected.
        async with _client(base, "127.0.0.3") as other:
            ok = await other.post(
                "/twilio/status", data=FORM | {"SequenceNumber": "2"},
                headers={"X-Twilio-Signature": _signed(base, "2")},
            )  # fmt: skip
            assert ok.status_code == 204
            metrics = await other.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
        assert 'switchboard_signature_throttled_total{carrier="twilio"} 2.0' in metrics.text
        assert 'reason="bad_signature"' in metrics.text

        async def let_in() -> bool:  # once the failures leave the window
            signed = await bad.post(
                "/twilio/status", data=FORM | {"SequenceNumber": "3"},
                headers={"X-Twilio-Signature": _signed(base, "3")},
            )  # fmt: skip
            return signed.status_code == 204

        await eventually_async(let_in, limit_s=6, every_s=0.25, what="the window to pass")


async def test_failed_media_token_checks_count_and_throttle_the_media_sockets() -> None:
    async with serve(window_s=60.0) as base:
        ws = "ws" + base[4:]
        reasons = [await _socket_close(f"{ws}/telnyx/media?token=forged.x") for _ in range(4)]
        assert [code for code, _ in reasons] == [1008] * 4
        assert reasons[-1][1] == "too many failed checks"
        assert {reason for _, reason in reasons[:3]} == {"invalid media token"}
        async with _client(base, "127.0.0.1") as http:
            status = await _status(http, "forged")
        assert status.status_code == 429  # one window per address, webhooks and sockets alike
