"""Live-call control and the raw client stream.

* ``POST /v1/calls`` — place an outbound call through a carrier for an agent, with the call's
  ``variables`` for its ``{{name}}`` placeholders (422 when one is left unfilled). ``to`` must be
  allowed by ``SWITCHBOARD_OUTBOUND_ALLOW`` (403 otherwise; empty refuses all), and each API
  token may place ``SWITCHBOARD_OUTBOUND_RATE_LIMIT`` requests per
  ``SWITCHBOARD_OUTBOUND_RATE_WINDOW_S`` (429 with ``Retry-After`` beyond).
  ``machine_detection: {policy: hangup | leave_message | continue, message}`` asks the carrier
  for answering-machine detection (docs/telephony.md#answering-machine-detection).
* ``POST /v1/calls/{id}/hangup`` / ``POST /v1/calls/{id}/transfer`` — act on a live call, on
  whichever node of the cluster holds it (app/cluster_control.py; 503 when the cluster cannot
  be reached); a transfer passes the call's agent's dial plan, as the ``transfer_call`` tool
  does (403). ``mode: warm`` (docs/telephony.md#warm-transfer) must also pass
  ``SWITCHBOARD_OUTBOUND_ALLOW`` (403), runs where the carrier supports it (409 otherwise) —
  on the node holding the call, which the request is forwarded to like a cold transfer — and
  answers ``transferring`` once started.
* ``GET /v1/sessions`` — the live calls of the whole cluster, each with its ``node``.
* ``WS /v1/stream`` — the seed's websocket handler: a program or browser streams PCM16 to a
  provider chosen by name or by requirements and gets agent audio (binary frames, same rate)
  and JSON events back.

``/v1/stream`` protocol. The token goes in the ``Authorization`` header or ``?token=``. The
client's first message is JSON::

    {"type": "start", "agent": "receptionist" | null,
     "provider": "openai" | null, "requirements": {...} | null,
     "sample_rate": 16000, "system_prompt": "...", "voice": null, "greeting": null,
     "tools": [<seed function shape>, ...]}

(``agent``: that agent's prompt, voice, greeting and provider — unless ``provider`` names
another — replace ``system_prompt``, ``voice``, ``greeting`` and ``tools``; its tools are not
offered, since they run in the gateway's calls), then binary frames of PCM16 LE mono at
``sample_rate`` — or, with ``"format": "opus"``
(``sample_rate`` 8000/16000/24000/48000), one raw Opus packet per binary frame, as browsers'
WebCodecs ``AudioEncoder`` produces them — and optionally JSON
``{"type": "function_result", "call_id": ..., "result": ...}``,
``{"type": "interrupt", "played_ms": 1200}`` or ``{"type": "stop"}``. The server answers
``{"type": "started", "provider": ..., "model": ...}``, then binary agent audio at
``sample_rate`` (in Opus: one 20 ms packet per frame) and JSON events
``{"type": "<ProviderEventType>", ...data}`` (audio omitted).
Errors are ``{"type": "error", "message": ...}`` followed by close code 1008 (auth) or 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.websockets import WebSocketDisconnect

from switchboard.agents import Agent
from switchboard.app.auth import require_token, require_token_ws
from switchboard.app.cluster_control import cluster_sessions, remote_destination, send_to_owner
from switchboard.app.cluster_replies import await_reply
from switchboard.app.operator_api import actor, note_action
from switchboard.app.state import get_state
from switchboard.audio import StreamConverter, check_rate
from switchboard.bridge.manager import CallManager
from switchboard.bridge.operator_control import OperatorConflict
from switchboard.bridge.wiring import choose_provider
from switchboard.cluster import ControlCommand
from switchboard.errors import AudioError, ConfigError, DialRefused, SwitchboardError
from switchboard.integrations.variables import CallVariables
from switchboard.media import AudioChunk, AudioFormat, AudioSpec
from switchboard.providers.base import BaseProvider, SessionConfig
from switchboard.providers.events import AudioOutput, ProviderEvent, ResponseDone
from switchboard.providers.registry import Requirements
from switchboard.telephony.amd import MachineDetection
from switchboard.telephony.base import TelephonyType

__all__ = ["control_router", "stream_router"]

logger = logging.getLogger(__name__)

control_router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_token)],
    tags=["calls"],
    responses={503: {"description": "call control is unavailable"}},
)
stream_router = APIRouter(prefix="/v1", tags=["stream"])


def _manager(request: Request) -> CallManager:
    calls = get_state(request).calls
    if not isinstance(calls, CallManager):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "call control is unavailable")
    return calls


class PlaceCall(BaseModel):
    carrier: TelephonyType
    to: str = Field(pattern=r"^\+[1-9]\d{6,14}$", description="E.164 number to dial")
    from_: str = Field(alias="from", pattern=r"^\+[1-9]\d{6,14}$", description="our number")
    agent: str | None = Field(default=None, description="agent profile name")
    variables: CallVariables | None = Field(
        default=None,
        description="the call's {{name}} values for the agent's prompt, greeting and HTTP "
        "tools (names [A-Za-z_][A-Za-z0-9_]*, string values; docs/integrations.md)",
    )
    machine_detection: MachineDetectionBody | None = Field(
        default=None, description="answering-machine detection (Twilio AMD, Telnyx premium)"
    )


class MachineDetectionBody(BaseModel):
    """Answering-machine detection for the call (docs/telephony.md#answering-machine-detection)."""

    model_config = ConfigDict(extra="forbid")

    policy: Literal["hangup", "leave_message", "continue"] = Field(
        description="what to do when a machine answers: hang up, leave `message` after the "
        "beep and hang up, or let the agent talk"
    )
    message: str | None = Field(
        default=None, min_length=1, max_length=2000, description="the message to leave"
    )

    @model_validator(mode="after")
    def _message_for_leave(self) -> MachineDetectionBody:
        if self.policy == "leave_message" and not self.message:
            raise ValueError("policy leave_message needs a message")
        return self


class PlacedCall(BaseModel):
    call_id: str
    carrier_call_id: str


class Transfer(BaseModel):
    destination: str = Field(
        min_length=2,
        max_length=200,
        description="a name in the agent's directory, or an allowed E.164 number or SIP URI",
    )
    mode: Literal["cold", "warm"] = Field(
        default="cold",
        description=(
            "cold: hand the caller over now. warm: hold the caller, dial, brief whoever "
            "answers, then join them (the caller goes back to the agent when nobody answers; "
            "the destination must also pass SWITCHBOARD_OUTBOUND_ALLOW)"
        ),
    )


class Ack(BaseModel):
    call_id: str
    status: str


def _token_key(request: Request) -> str:
    """The rate-limit key of the request's bearer token: a digest, not the token itself."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _check_rate(request: Request) -> None:
    """429 with ``Retry-After`` when this token has used up its outbound calls."""
    limiter = get_state(request).outbound_limiter
    wait_s = limiter.hit(_token_key(request), time.monotonic())
    if wait_s is not None:
        logger.warning(
            "outbound call refused: rate limit (%d per %g s)", limiter.limit, limiter.window_s
        )
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"outbound call limit reached ({limiter.limit} per {limiter.window_s:g} s per token)",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


@control_router.post(
    "/calls",
    response_model=PlacedCall,
    status_code=201,
    responses={
        403: {"description": "`to` is not allowed by SWITCHBOARD_OUTBOUND_ALLOW"},
        429: {"description": "this token's outbound call limit is reached (see Retry-After)"},
    },
)
async def place_call(body: PlaceCall, request: Request) -> PlacedCall:
    """Dial out through a carrier; the call is answered by the agent's provider."""
    manager = _manager(request)
    _check_rate(request)  # every request counts, refused ones too: probing is bounded as well
    try:
        call_id, carrier_id = await manager.place_call(
            carrier=body.carrier,
            to=body.to,
            from_=body.from_,
            agent=body.agent,
            variables=body.variables,
            machine_detection=(
                MachineDetection(body.machine_detection.policy, body.machine_detection.message)
                if body.machine_detection is not None
                else None
            ),
        )
    except DialRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except ConfigError as exc:
        # (Starlette deprecated the ENTITY spelling of 422: it warns, and warnings are errors)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return PlacedCall(call_id=call_id, carrier_call_id=carrier_id)


@control_router.post(
    "/calls/{call_id}/hangup",
    response_model=Ack,
    responses={
        404: {"description": "no live call with this id"},
        503: {"description": "the cluster cannot be reached to find the call"},
        504: {"description": "the node holding the call did not answer in time"},
    },
)
async def hang_up(call_id: str, request: Request) -> Ack:
    """Hang up a live call (held by this node or another node of the cluster)."""
    manager = _manager(request)
    if call_id not in manager.calls:  # another node's call: its node hangs it up
        state = get_state(request)
        command = ControlCommand(call_id, "hangup", reason=actor(request)["via"])
        await await_reply(state, command, await send_to_owner(state, command))  # its answer
        return Ack(call_id=call_id, status="hanging-up")
    note_action(request, call_id, "hang_up", {})  # who asked, on the call's timeline
    try:
        await manager.hang_up(call_id)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live call {call_id}") from None
    return Ack(call_id=call_id, status="hanging-up")


@control_router.post(
    "/calls/{call_id}/transfer",
    response_model=Ack,
    responses={
        403: {"description": "the call's agent (warm: or SWITCHBOARD_OUTBOUND_ALLOW) refuses it"},
        404: {"description": "no live call with this id"},
        409: {
            "description": "the node holding the call refused (e.g. the carrier cannot); "
            "warm: not available on this call, or one is under way"
        },
        502: {"description": "the carrier refused the transfer"},
        503: {"description": "the cluster cannot be reached to find the call"},
        504: {"description": "the node holding the call did not answer in time"},
    },
)
async def transfer(call_id: str, body: Transfer, request: Request) -> Ack:
    """Transfer a live call to a directory name or an allowed number (the agent's dial plan);
    ``mode: warm`` answers ``transferring`` at once and goes on in the background."""
    manager = _manager(request)
    if call_id not in manager.calls:  # another node's call: checked here, done there
        state = get_state(request)
        try:
            destination = await remote_destination(state, call_id, body.destination)
        except DialRefused as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
        # warm: the owner checks SWITCHBOARD_OUTBOUND_ALLOW (403) and whether it can (409),
        # starts it and answers; the transfer runs there, beside the caller's stream
        action: Literal["transfer", "warm_transfer"] = (
            "warm_transfer" if body.mode == "warm" else "transfer"
        )
        command = ControlCommand(call_id, action, destination, actor(request)["via"])
        await await_reply(state, command, await send_to_owner(state, command))  # its answer
        return Ack(call_id=call_id, status="transferring" if body.mode == "warm" else "transferred")
    note = {"to": body.destination} | ({"mode": "warm"} if body.mode == "warm" else {})
    note_action(request, call_id, "transfer", note)  # the request; the outcome follows as
    try:  # call.transferred (or transfer.warm.failed), or the 403
        await manager.transfer(call_id, body.destination, mode=body.mode)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live call {call_id}") from None
    except DialRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except OperatorConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return Ack(call_id=call_id, status="transferring" if body.mode == "warm" else "transferred")


class AgentOut(BaseModel):
    name: str
    provider: str | None = Field(description="the agent's provider (None: chosen per call)")
    numbers: list[str]


@control_router.get("/agents", response_model=list[AgentOut])
async def agents(request: Request) -> list[AgentOut]:
    """The agent profiles (``WS /v1/stream`` talks to one by name: the console's Playground)."""
    return [
        AgentOut(
            name=agent.name,
            provider=agent.provider.value if agent.provider is not None else None,
            numbers=list(agent.numbers),
        )
        for agent in _manager(request).agents
    ]


@control_router.get("/sessions")
async def sessions(request: Request) -> list[dict[str, Any]]:
    """The live calls of every node of the cluster, each with its ``node``."""
    return await cluster_sessions(get_state(request), _manager(request))


# -- the raw client stream -------------------------------------------------------------------------
def _event_json(event: ProviderEvent) -> str:
    data: dict[str, Any] = {"type": event.type.value}
    for key, value in event.data.items():
        if key == "chunk":
            continue
        data[key] = value.as_dict() if hasattr(value, "as_dict") else value
    return json.dumps(data, default=str)


@stream_router.websocket("/stream")
async def stream(websocket: WebSocket) -> None:
    """The seed's websocket handler (protocol in the module docstring)."""
    if not await require_token_ws(websocket):
        await websocket.close(1008, "missing or invalid token")
        return
    await websocket.accept()
    state = get_state(websocket)
    provider: BaseProvider | None = None
    pump: asyncio.Task[None] | None = None
    try:  # whatever happens from here on, the provider session and its pump are closed
        try:
            start = json.loads(await asyncio.wait_for(websocket.receive_text(), 10.0))
            if not isinstance(start, dict) or start.get("type") != "start":
                raise ConfigError('the first message must be {"type": "start", ...}')
            # Validated before any provider is created or connected.
            client = AudioSpec(
                _client_format(start.get("format", "pcm16")),
                check_rate(int(start.get("sample_rate", 16000))),
            )
            agent = _stream_agent(state.calls, start.get("agent"))
            if agent is not None:  # the agent's prompt, voice, greeting and provider
                name = start.get("provider") or choose_provider(state.gateway, agent)
                config = agent.session_config(AudioSpec(AudioFormat.PCM16, client.sample_rate))
            else:
                name = (
                    start.get("provider")
                    or state.gateway.providers.select_best_provider(
                        Requirements.from_mapping(start.get("requirements") or {})
                    ).value
                )
                config = SessionConfig(
                    audio_format=AudioFormat.PCM16,
                    sample_rate=client.sample_rate,
                    system_prompt=start.get("system_prompt"),
                    voice=start.get("voice"),
                    greeting=start.get("greeting"),
                    tools=list(start.get("tools") or []),
                )
            provider = state.gateway.providers.create_provider(name, config)
            inbound = StreamConverter(client, provider.input_spec)
            await provider.connect()
        except (SwitchboardError, ValueError, TypeError, TimeoutError) as exc:
            await websocket.send_text(json.dumps({"type": "error", "message": str(exc)}))
            await websocket.close(1011, "cannot start")
            return
        await websocket.send_text(
            json.dumps({"type": "started", "provider": name, "model": config.model_id})
        )
        pump = asyncio.get_running_loop().create_task(_pump_events(websocket, provider, client))
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                try:
                    data = inbound.process(message["bytes"])
                except AudioError as exc:  # one bad packet: say so, keep the session
                    await websocket.send_text(json.dumps({"type": "error", "message": str(exc)}))
                    continue
                if data:
                    spec = provider.input_spec
                    await provider.send_audio(AudioChunk(data, spec.format, spec.sample_rate))
            elif message.get("text") is not None and not await _client_command(
                websocket, provider, message["text"]
            ):
                break
    except (WebSocketDisconnect, SwitchboardError) as exc:
        logger.info("stream client ended: %s", exc)
    finally:
        if pump is not None:
            pump.cancel()
            await asyncio.wait({pump})
            if not pump.cancelled() and (error := pump.exception()) is not None:
                logger.info("stream event pump ended: %s", error)
        if provider is not None:
            with contextlib.suppress(Exception):
                await provider.disconnect()
        with contextlib.suppress(Exception):
            await websocket.close(1000)


def _stream_agent(calls: object, name: object) -> Agent | None:
    """The agent a stream asked for by name (None when it named none)."""
    if name is None:
        return None
    agent = calls.agents.get(str(name)) if isinstance(calls, CallManager) else None
    if agent is None:
        raise ConfigError(f"no agent named {name!r}")
    return agent


def _client_format(value: object) -> AudioFormat:
    """The client's audio format: ``pcm16`` (default) or ``opus``."""
    if value not in ("pcm16", "opus"):
        raise ConfigError(f"format must be 'pcm16' or 'opus', not {value!r}")
    return AudioFormat(value)


async def _client_command(websocket: WebSocket, provider: BaseProvider, text: str) -> bool:
    try:
        command = json.loads(text)
        kind = command["type"]
    except (ValueError, KeyError, TypeError):
        await websocket.send_text(json.dumps({"type": "error", "message": "malformed command"}))
        return True
    match kind:
        case "function_result":
            await provider.handle_function_result(str(command["call_id"]), command.get("result"))
        case "interrupt":
            await provider.interrupt(command.get("played_ms"))
        case "stop":
            return False
        case _:
            await websocket.send_text(
                json.dumps({"type": "error", "message": f"unknown command {kind!r}"})
            )
    return True


async def _pump_events(websocket: WebSocket, provider: BaseProvider, client: AudioSpec) -> None:
    outbound = StreamConverter(provider.output_spec, client)
    async for event in provider.receive_events():
        if isinstance(event.data, AudioOutput):
            for data in outbound.process_packets(event.data.chunk.data):
                await websocket.send_bytes(data)  # Opus: one packet per message
            continue
        if isinstance(event.data, ResponseDone):
            for tail in outbound.flush_packets():
                await websocket.send_bytes(tail)
        await websocket.send_text(_event_json(event))
    await websocket.close(1000, "provider session ended")
