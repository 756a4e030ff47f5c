"""The Telnyx emulator on its own: driven by raw HTTP, raw websockets and raw Ed25519 checks.

Nothing from ``switchboard.telephony.telnyx`` is used here, so these tests pin the emulator to
protocols.md §5 independently of the client code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.conftest import UNIT
from tests.waiting import printed
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from switchboard.audio.g711 import pcm16_to_ulaw
from switchboard.emulators.common import pcm16_rms, speech_like_pcm16
from switchboard.emulators.telnyx import (
    LoopbackServer,
    TelnyxEmulator,
    bind_loopback,
    run,
    run_call,
    wav_bytes,
)

pytestmark = pytest.mark.anyio
KEY = "KEY_emulator_tests"
TIMEOUT = 20 * UNIT


@dataclass
class Hooks:
    """A bare webhook receiver that checks every signature with the raw Ed25519 key."""

    public_key_b64: str
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    bad_signatures: int = 0
    on_event: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    async def endpoint(self, request: Request) -> JSONResponse:
        body = await request.body()
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key_b64))
        ts = request.headers["telnyx-timestamp"]
        try:
            key.verify(
                base64.b64decode(request.headers["telnyx-signature-ed25519"]),
                f"{ts}|".encode() + body,
            )
        except Exception:
            self.bad_signatures += 1
            return JSONResponse({}, 403)
        assert abs(int(ts) - time.time()) < 5
        data = json.loads(body)["data"]
        await self.events.put(data)
        if self.on_event is not None:
            await self.on_event(data)
        return JSONResponse({"ok": True})

    async def next(self, event_type: str) -> dict[str, Any]:
        data = await asyncio.wait_for(self.events.get(), TIMEOUT)
        assert data["event_type"] == event_type, data["event_type"]
        return data


@asynccontextmanager
async def hooks_for(emu: TelnyxEmulator) -> AsyncIterator[Hooks]:
    hooks = Hooks(emu.public_key_b64)
    app = Starlette(routes=[Route("/hook", hooks.endpoint, methods=["POST"])])
    async with LoopbackServer(app) as server:
        emu.webhook_url = server.base_url + "/hook"
        yield hooks


async def command(emu: TelnyxEmulator, ccid: str, action: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{emu.base_url}/v2/calls/{ccid}/actions/{action}",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
        )


Script = Callable[[ServerConnection, dict[str, Any]], Awaitable[None]]


@asynccontextmanager
async def media_server(script: Script) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A raw websocket app; ``script(ws, seen)`` runs per connection; ``seen`` records frames.

    A script that fails (an assertion, a bug) fails the test when the server closes.
    """
    seen: dict[str, Any] = {"frames": [], "acks": [], "errors": []}

    async def handler(ws: ServerConnection) -> None:
        try:
            await script(ws, seen)
        except ConnectionClosed:
            pass  # the caller hung up while the script was still sending: part of the flow
        except Exception as exc:  # reported below, where pytest sees it
            seen["errors"].append(exc)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/media?token=abc", seen
    assert seen["errors"] == [], seen["errors"]


def ulaw_frames(ms: int) -> list[str]:
    pcm = speech_like_pcm16("hello there", 8000, ms_per_char=ms / 11)
    ulaw = pcm16_to_ulaw(pcm)
    return [
        json.dumps(
            {"event": "media", "media": {"payload": base64.b64encode(ulaw[i : i + 160]).decode()}}
        )
        for i in range(0, len(ulaw) - 159, 160)
    ]


async def test_inbound_call_flow_marks_and_clear() -> None:
    async def script(ws: ServerConnection, seen: dict[str, Any]) -> None:
        media_before_ack = 0
        async for raw in ws:
            msg = json.loads(raw)
            seen["frames"].append(msg)
            match msg["event"]:
                case "start":
                    for frame in ulaw_frames(300):  # 15 frames, then a mark
                        await ws.send(frame)
                    await ws.send(json.dumps({"event": "mark", "mark": {"name": "m1"}}))
                case "media":
                    media_before_ack += 1
                case "mark":
                    seen["acks"].append((msg["mark"]["name"], media_before_ack))
                    if msg["mark"]["name"] == "m1":
                        for frame in ulaw_frames(1000):
                            await ws.send(frame)
                        await ws.send(json.dumps({"event": "mark", "mark": {"name": "m2"}}))
                        await ws.send(json.dumps({"event": "clear"}))

    async with (
        TelnyxEmulator(api_key=KEY, realtime=False, tail_ms=200) as emu,
        hooks_for(emu) as hooks,
        media_server(script) as (url, seen),
    ):
        audio = wav_bytes(speech_like_pcm16("x" * 10, 8000, ms_per_char=60), 8000)  # 600 ms
        call = await emu.place_inbound_call(to="+15550001", from_="+15550002", audio=audio)
        initiated = await hooks.next("call.initiated")
        payload = initiated["payload"]
        assert payload["direction"] == "incoming"
        assert payload["state"] == "parked"
        assert (payload["from"], payload["to"]) == ("+15550002", "+15550001")
        ccid = payload["call_control_id"]
        assert (await command(emu, ccid, "answer")).json() == {"data": {"result": "ok"}}
        assert (await hooks.next("call.answered"))["payload"]["state"] == "answered"
        response = await command(
            emu,
            ccid,
            "streaming_start",
            stream_url=url,
            stream_track="inbound_track",
            stream_bidirectional_mode="rtp",
            stream_bidirectional_codec="PCMU",
        )
        assert response.status_code == 200
        assert (await hooks.next("streaming.started"))["payload"]["stream_url"] == url
        report = await call.wait(TIMEOUT)
        assert (await hooks.next("streaming.stopped"))["payload"]["call_control_id"] == ccid
        hangup = await hooks.next("call.hangup")
    assert hangup["payload"]["hangup_cause"] == "normal_clearing"
    assert hangup["payload"]["hangup_source"] == "caller"
    assert hooks.bad_signatures == 0
    frames = seen["frames"]
    assert [f["event"] for f in frames[:3]] == ["connected", "start", "media"]
    assert frames[-1]["event"] == "stop"
    start = frames[1]
    assert start["start"]["call_control_id"] == ccid
    assert start["start"]["media_format"] == {
        "encoding": "PCMU",
        "sample_rate": 8000,
        "channels": 1,
    }
    assert start["stream_id"] == report.stream_id
    media = [f for f in frames if f["event"] == "media"]
    assert len(media) == report.frames_sent == 30
    assert [int(f["media"]["chunk"]) for f in media] == list(range(1, 31))
    assert all(f["media"]["track"] == "inbound" for f in media)
    seqs = [int(f["sequence_number"]) for f in frames if "sequence_number" in f]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    # m1 is acknowledged once its 300 ms have played (one frame plays per caller frame sent);
    # m2 is returned at once by clear, before its audio played.
    (m1, m1_at), (m2, _) = seen["acks"]
    assert (m1, m2) == ("m1", "m2")
    assert m1_at >= 15
    assert report.marks == ["m1", "m2"]
    assert report.clears == 1
    assert 300 <= report.heard_ms < 400
    assert len(report.heard_pcm) == report.stream_ms * 16  # timeline-faithful: 8 kHz PCM16
    assert report.commands == ["answer", "streaming_start"]
    assert report.violations == []
    assert emu.violations == []


async def test_app_hangup_stops_the_stream_first() -> None:
    streaming = asyncio.Event()

    async def script(ws: ServerConnection, seen: dict[str, Any]) -> None:
        async for raw in ws:
            seen["frames"].append(json.loads(raw))
            if len(seen["frames"]) >= 5:
                streaming.set()

    async with (
        TelnyxEmulator(api_key=KEY, realtime=False) as emu,
        hooks_for(emu) as hooks,
        media_server(script) as (url, seen),
    ):
        audio = wav_bytes(speech_like_pcm16("x" * 10, 8000, ms_per_char=1000), 8000)  # 10 s
        call = await emu.place_inbound_call(to="+1", from_="+2", audio=audio)
        ccid = (await hooks.next("call.initiated"))["payload"]["call_control_id"]
        # answer with the stream in one command
        await command(emu, ccid, "answer", stream_url=url, stream_bidirectional_mode="rtp")
        await hooks.next("call.answered")
        await hooks.next("streaming.started")
        await asyncio.wait_for(streaming.wait(), TIMEOUT)
        assert (await command(emu, ccid, "hangup")).status_code == 200
        report = await call.wait(TIMEOUT)
        await hooks.next("streaming.stopped")
        assert (await hooks.next("call.hangup"))["payload"]["hangup_source"] == "callee"
        again = await command(emu, ccid, "hangup")
    assert again.status_code == 422
    assert again.json()["errors"][0]["code"] == "90018"
    assert seen["frames"][-1]["event"] == "stop"
    assert report.frames_sent < 500
    assert report.ended_by == "app_hangup"


async def test_out_of_order_delivery_option_swaps_frames() -> None:
    async def script(ws: ServerConnection, seen: dict[str, Any]) -> None:
        async for raw in ws:
            seen["frames"].append(json.loads(raw))

    async with (
        TelnyxEmulator(api_key=KEY, realtime=False, tail_ms=0) as emu,
        hooks_for(emu) as hooks,
        media_server(script) as (url, seen),
    ):
        audio = wav_bytes(bytes(1600), 8000)  # 100 ms
        call = await emu.place_inbound_call(to="+1", from_="+2", audio=audio, swap_every=2)
        ccid = (await hooks.next("call.initiated"))["payload"]["call_control_id"]
        await command(emu, ccid, "answer", stream_url=url)
        await call.wait(TIMEOUT)
    chunks = [int(f["media"]["chunk"]) for f in seen["frames"] if f["event"] == "media"]
    assert chunks == [2, 1, 4, 3, 5]


async def test_unanswered_call_ends_at_the_time_limit() -> None:
    emu = TelnyxEmulator(api_key=KEY, realtime=False, max_call_ms=2000)
    async with emu, hooks_for(emu) as hooks:
        call = await emu.place_inbound_call(to="+1", from_="+2")
        report = await call.wait(TIMEOUT)
        await hooks.next("call.initiated")
        hangup = await hooks.next("call.hangup")
    assert hangup["payload"]["hangup_cause"] == "time_limit"
    assert report.ended_by == "max_duration"
    assert report.commands == []


async def test_rest_errors_are_realistic() -> None:
    async with TelnyxEmulator(api_key=KEY) as emu, httpx.AsyncClient() as client:
        bad = await client.post(
            f"{emu.base_url}/v2/calls/v3:x/actions/answer",
            json={},
            headers={"Authorization": "Bearer nope"},
        )
        unknown = await command(emu, "v3:unknown", "answer")
        dial = await client.post(
            f"{emu.base_url}/v2/calls",
            json={"to": "+1"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        call = await emu.place_inbound_call(to="+1", from_="+2")
        early = await command(emu, call.call_control_id, "streaming_start", stream_url="ws://x/")
        bad_url = await command(emu, call.call_control_id, "answer", stream_url="https://x/")
    assert bad.status_code == 401
    assert bad.json()["errors"][0]["code"] == "10009"
    assert unknown.status_code == 404
    assert dial.status_code == 422
    assert early.status_code == 422
    assert bad_url.status_code == 422
    assert len(emu.violations) == 3  # dial fields, streaming before answer, http stream_url


async def test_dialled_call_rings_then_answers_with_stream() -> None:
    async def script(ws: ServerConnection, seen: dict[str, Any]) -> None:
        async for raw in ws:
            seen["frames"].append(json.loads(raw))

    async with (
        TelnyxEmulator(api_key=KEY, realtime=False, audio=wav_bytes(bytes(3200), 8000)) as emu,
        hooks_for(emu) as hooks,
        media_server(script) as (url, seen),
        httpx.AsyncClient() as client,
    ):
        response = await client.post(
            f"{emu.base_url}/v2/calls",
            json={"connection_id": "c1", "to": "+1", "from": "+2", "stream_url": url},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        data = response.json()["data"]
        assert data["record_type"] == "call"
        initiated = await hooks.next("call.initiated")
        assert initiated["payload"]["direction"] == "outgoing"
        assert initiated["payload"]["state"] == "bridging"
        await hooks.next("call.answered")
        await hooks.next("streaming.started")
        report = await emu.calls[data["call_control_id"]].wait(TIMEOUT)
    assert report.direction == "outgoing"
    assert report.frames_sent == 10
    assert len([f for f in seen["frames"] if f["event"] == "media"]) == 10


async def echo_script(ws: ServerConnection, seen: dict[str, Any]) -> None:
    async for raw in ws:
        msg = json.loads(raw)
        if msg["event"] == "media":
            await ws.send(
                json.dumps({"event": "media", "media": {"payload": msg["media"]["payload"]}})
            )


@asynccontextmanager
async def auto_answering_app(
    emulator_url: str, public_key_b64: str
) -> AsyncIterator[tuple[str, Hooks]]:
    """A bare app: answers every incoming call with an echoing bidirectional stream."""
    async with media_server(echo_script) as (url, _):

        async def auto_answer(data: dict[str, Any]) -> None:
            if data["event_type"] == "call.initiated":
                ccid = data["payload"]["call_control_id"]
                async with httpx.AsyncClient() as client:
                    await client.post(
                        f"{emulator_url}/v2/calls/{ccid}/actions/answer",
                        json={"stream_url": url, "stream_bidirectional_mode": "rtp"},
                        headers={"Authorization": f"Bearer {KEY}"},
                    )

        hooks = Hooks(public_key_b64=public_key_b64, on_event=auto_answer)
        app = Starlette(routes=[Route("/telnyx/webhook", hooks.endpoint, methods=["POST"])])
        async with LoopbackServer(app) as server:
            yield server.base_url, hooks


def caller_file(tmp_path: Path) -> Path:
    wav = tmp_path / "caller.wav"
    wav.write_bytes(wav_bytes(speech_like_pcm16("x" * 10, 16000, ms_per_char=40), 16000))
    return wav


async def test_run_call_in_process_with_a_pinned_port_and_key(tmp_path: Path) -> None:
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    seed = bytes(range(32))
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    public_b64 = base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    out = tmp_path / "heard.wav"
    async with auto_answering_app(f"http://127.0.0.1:{port}", public_b64) as (server, hooks):
        report = await run_call(
            server=server,
            audio=caller_file(tmp_path),
            out=out,
            realtime=False,
            discover_at=f"http://127.0.0.1:{port}",  # nothing answers there yet: in-process
            port=port,
            api_key=KEY,
            private_key_b64=base64.b64encode(seed).decode(),
        )
    assert report.frames_sent == report.frames_received == 20
    assert 380 <= report.heard_ms <= 400
    assert out.stat().st_size == 44 + len(report.heard_pcm)
    summary = report.summary()
    assert report.call_control_id in summary
    assert "answer" in summary
    assert hooks.bad_signatures == 0


@pytest.mark.parametrize("locate", ["emulator", "discover_at"])
async def test_run_call_through_a_running_emulator(tmp_path: Path, locate: str) -> None:
    async with TelnyxEmulator(api_key=KEY, realtime=False) as emu:
        where: dict[str, Any] = {locate: emu.base_url}  # named outright, or found by probing
        async with auto_answering_app(emu.base_url, emu.public_key_b64) as (server, hooks):
            out = tmp_path / "heard.wav"
            report = await run_call(
                server=server,
                audio=caller_file(tmp_path),
                out=out,
                **where,
                api_key=KEY,
                dtmf="7",
            )
        async with httpx.AsyncClient() as client:
            unauthorised = await client.post(f"{emu.base_url}/_emulator/calls", json={})
    assert report.frames_sent == report.frames_received == 20
    assert report.call_control_id in emu.calls
    assert report.commands == ["answer"]
    assert ("call.dtmf.received", 200) in report.webhooks
    assert pcm16_rms(report.heard_pcm) > 0.01
    assert out.stat().st_size == 44 + len(report.heard_pcm)
    assert hooks.bad_signatures == 0
    assert unauthorised.status_code == 401


async def test_run_prints_its_url_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    seed = base64.b64encode(bytes(32)).decode()
    task = asyncio.create_task(run(port=0, api_key=KEY, private_key_b64=seed))
    out = await printed(capsys, "\n")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    public = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    public_b64 = base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    assert out.startswith("telnyx emulator on http://127.0.0.1:")
    assert f"TELNYX_PUBLIC_KEY={public_b64}" in out
    assert out.count("\n") == 1


async def test_a_lost_socket_keeps_the_call_up_and_streaming_start_opens_a_new_leg() -> None:
    """The app's socket closes without ``streaming_stop``: ``streaming.stopped``, the call stays
    up (``is_alive``), and ``streaming_start`` on the answered call dials a new leg, as Telnyx."""
    connections = 0

    async def script(ws: ServerConnection, seen: dict[str, Any]) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        async for raw in ws:
            seen["frames"].append(json.loads(raw))
            if first and len(seen["frames"]) >= 5:
                await ws.close()  # the node holding the call died
                return

    async with (
        TelnyxEmulator(api_key=KEY, realtime=False, stream_loss_patience_ms=60_000) as emu,
        hooks_for(emu) as hooks,
        media_server(script) as (url, _seen),
    ):
        audio = wav_bytes(speech_like_pcm16("x" * 10, 8000, ms_per_char=1000), 8000)  # 10 s
        call = await emu.place_inbound_call(to="+1", from_="+2", audio=audio)
        ccid = (await hooks.next("call.initiated"))["payload"]["call_control_id"]
        await command(emu, ccid, "answer", stream_url=url, stream_bidirectional_mode="rtp")
        await hooks.next("call.answered")
        await hooks.next("streaming.started")
        await hooks.next("streaming.stopped")
        async with httpx.AsyncClient() as client:
            status = await client.get(
                f"{emu.base_url}/v2/calls/{ccid}", headers={"Authorization": f"Bearer {KEY}"}
            )
        assert status.json()["data"]["is_alive"] is True
        again = await command(
            emu, ccid, "streaming_start", stream_url=url, stream_bidirectional_mode="rtp"
        )
        assert again.status_code == 200, again.text
        await hooks.next("streaming.started")
        assert (await command(emu, ccid, "hangup")).status_code == 200
        report = await call.wait(TIMEOUT)
    assert connections == 2
    assert [leg.ended_by for leg in call.legs] == ["app_closed_socket", "app_hangup"]
    assert report.hangup_source == "callee"


async def test_a_caller_left_without_a_stream_hangs_up() -> None:
    async def script(ws: ServerConnection, seen: dict[str, Any]) -> None:
        await ws.recv()
        await ws.close()

    async with (
        TelnyxEmulator(api_key=KEY, realtime=False, stream_loss_patience_ms=2000) as emu,
        hooks_for(emu),
        media_server(script) as (url, _seen),
    ):
        call = await emu.place_inbound_call(to="+1", from_="+2")
        await command(emu, call.call_control_id, "answer", stream_url=url)
        report = await call.wait(TIMEOUT)
    assert report.ended_by == "stream_lost"
    assert report.hangup_source == "caller"
