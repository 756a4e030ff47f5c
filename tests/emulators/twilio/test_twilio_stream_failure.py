"""A media stream the server closes before any answer is a failed stream, as at Twilio: the
caller logs it and requests the ``<Connect action>`` (a balancer whose node had just died did
this in a cluster test, and the emulator raised ``InvalidMessage`` out of the call)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.conftest import UNIT

from switchboard.emulators.loopback import LoopbackServer
from switchboard.emulators.twilio import TwilioEmulator

pytestmark = pytest.mark.anyio


async def test_a_stream_closed_before_any_answer_requests_the_connect_action() -> None:
    async def close_at_once(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    media = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = media.sockets[0].getsockname()[1]
    actions: list[dict[str, str]] = []

    async def voice(request: Request) -> Response:
        twiml = (
            f'<Response><Connect action="{request.base_url}after">'
            f'<Stream url="ws://127.0.0.1:{port}/media"/></Connect></Response>'
        )
        return Response(twiml, media_type="text/xml")

    async def after(request: Request) -> Response:
        actions.append({k: str(v) for k, v in (await request.form()).items()})
        return Response("<Response><Hangup/></Response>", media_type="text/xml")

    app = Starlette(
        routes=[Route("/voice", voice, methods=["POST"]), Route("/after", after, methods=["POST"])]
    )
    async with media, LoopbackServer(app, lifespan="off") as web, TwilioEmulator() as twilio:
        twilio.dial_in(f"{web.base_url}/voice", audio=b"\xff" * 8000)
        (report,) = await twilio.wait_calls(timeout_s=20 * UNIT)
    assert len(actions) == 1 and actions[0]["CallSid"] == report.call_sid
    assert report.violations == []
