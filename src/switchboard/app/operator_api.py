"""An operator's actions on a live call, and who did them.

* ``POST /v1/calls/{id}/say`` — the agent speaks ``text`` to the caller now (the provider's
  ``say``: 409 when the call is not bridged yet or its provider cannot speak arbitrary text).
* ``POST /v1/calls/{id}/whisper`` — the agent is told ``text``; the caller does not hear it.
* ``POST /v1/calls/{id}/takeover`` / ``…/handback`` — an operator has the call instead of the
  agent, then gives it back (the audio: ``app/operator_audio.py``).

Every operator action — this one, and ``hangup`` and ``transfer`` in ``control_api`` — is put
on the call's timeline as ``operator.<action>`` with ``by`` (``"operator"``: the holder of the
API token, the only identity the API knows) and ``via`` (``"console"`` when the request carries
``X-Switchboard-Client: console``, else ``"api"``) and ``token`` (a short digest naming the
token used), so the record says who acted and how.

A call held by another node of the cluster: ``say``, ``whisper``, ``takeover`` and ``handback``
are sent to that node through the control bus, which notes them on the call's timeline and
answers; the API answers with its status (``cluster_replies``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from switchboard.app.auth import require_token
from switchboard.app.cluster_control import note_on_call, send_to_owner
from switchboard.app.cluster_replies import await_reply
from switchboard.app.state import get_state
from switchboard.bridge.manager import CallManager
from switchboard.bridge.operator_control import OperatorConflict
from switchboard.cluster import ControlCommand
from switchboard.errors import UnsupportedOperation

__all__ = ["actor", "note_action", "operator_router"]

logger = logging.getLogger(__name__)

operator_router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_token)],
    tags=["calls"],
    responses={
        404: {"description": "no live call with this id"},
        503: {"description": "call control is unavailable"},
        504: {"description": "the node holding the call did not answer in time"},
    },
)


class Say(BaseModel):
    text: str = Field(min_length=1, max_length=2000, description="what the agent says now")


class Whisper(BaseModel):
    text: str = Field(
        min_length=1,
        max_length=2000,
        description="what the agent is told (the caller does not hear it)",
    )
    respond: bool = Field(default=False, description="the agent acts on it at once")


class OperatorAck(BaseModel):
    call_id: str
    status: str


def _manager(request: Request) -> CallManager:
    calls = get_state(request).calls
    if not isinstance(calls, CallManager):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "call control is unavailable")
    return calls


def actor(request: Request) -> dict[str, str]:
    """Who acts: the API token's holder (``token``: the first 8 hex digits of the token's
    SHA-256, which names it without revealing it), through the console or a program."""
    client = request.headers.get("x-switchboard-client", "")
    bearer = request.headers.get("authorization", "").partition(" ")[2].strip()
    digest = hashlib.sha256(bearer.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return {"by": "operator", "token": digest, "via": "console" if client == "console" else "api"}


def note_action(request: Request, call_id: str, action: str, data: dict[str, Any]) -> None:
    """Put ``operator.<action>`` on a live call's timeline (and the live events), with who
    did it; nothing when the call is no longer live (or lives on another node, which notes
    it when the command arrives)."""
    note_on_call(get_state(request).calls, call_id, action, {**data, **actor(request)})


async def _act(request: Request, call_id: str, action: Awaitable[Any]) -> None:
    """Run an operator action, its errors as HTTP answers."""
    try:
        await action
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live call {call_id}") from None
    except (OperatorConflict, UnsupportedOperation) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


async def _on_owner(request: Request, command: ControlCommand) -> dict[str, Any]:
    """Have the node holding another node's call carry ``command`` out; its answer."""
    state = get_state(request)
    command = replace(command, reason=actor(request)["via"])
    return await await_reply(state, command, await send_to_owner(state, command))


def _live(request: Request, call_id: str) -> CallManager:
    manager = _manager(request)
    active = manager.calls.get(call_id)
    if active is None or active.ending:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live call {call_id}")
    return manager


@operator_router.post(
    "/calls/{call_id}/say",
    response_model=OperatorAck,
    responses={
        409: {
            "description": "not bridged yet, an operator has the call, or the provider "
            "cannot speak text"
        }
    },
)
async def say(call_id: str, body: Say, request: Request) -> OperatorAck:
    """The agent speaks ``text`` to the caller now, as its next reply."""
    manager = _manager(request)
    if call_id not in manager.calls:  # another node's call: that node has it said
        await _on_owner(request, ControlCommand(call_id, "say", text=body.text))
        return OperatorAck(call_id=call_id, status="saying")
    await _act(request, call_id, _live(request, call_id).say(call_id, body.text))
    note_action(request, call_id, "say", {"text": body.text})
    logger.info("call %s: operator said %d characters", call_id, len(body.text))
    return OperatorAck(call_id=call_id, status="saying")


@operator_router.post(
    "/calls/{call_id}/whisper",
    response_model=OperatorAck,
    responses={409: {"description": "not bridged yet, or the provider cannot take a note"}},
)
async def whisper(call_id: str, body: Whisper, request: Request) -> OperatorAck:
    """Tell the agent ``text``; the caller does not hear it (``respond``: the agent acts on
    it at once, else it reads it before its next reply)."""
    if call_id not in _manager(request).calls:
        command = ControlCommand(call_id, "whisper", text=body.text, respond=body.respond)
        await _on_owner(request, command)
        return OperatorAck(call_id=call_id, status="whispered")
    manager = _live(request, call_id)
    await _act(request, call_id, manager.whisper(call_id, body.text, respond=body.respond))
    note_action(request, call_id, "whisper", {"text": body.text, "respond": body.respond})
    return OperatorAck(call_id=call_id, status="whispered")


@operator_router.post(
    "/calls/{call_id}/takeover",
    response_model=OperatorAck,
    responses={409: {"description": "not bridged yet, or taken over already"}},
)
async def take_over(call_id: str, request: Request) -> OperatorAck:
    """The operator has the call: the agent stops speaking and stops hearing the caller.
    The operator speaks over ``WS /v1/calls/{id}/operator`` and hears the caller there."""
    if call_id not in _manager(request).calls:
        await _on_owner(request, ControlCommand(call_id, "takeover"))
        return OperatorAck(call_id=call_id, status="taken-over")
    manager = _live(request, call_id)
    await _act(request, call_id, manager.take_over(call_id, actor(request)["by"]))
    note_action(request, call_id, "take_over", {})
    return OperatorAck(call_id=call_id, status="taken-over")


@operator_router.post(
    "/calls/{call_id}/handback",
    response_model=OperatorAck,
    responses={409: {"description": "not bridged yet, or not taken over"}},
)
async def hand_back(call_id: str, request: Request) -> OperatorAck:
    """The agent has the call again, told that an operator spoke with the caller (and for
    how long)."""
    if call_id not in _manager(request).calls:
        await _on_owner(request, ControlCommand(call_id, "handback"))
        return OperatorAck(call_id=call_id, status="handed-back")
    manager = _live(request, call_id)
    seconds: list[float] = []

    async def run() -> None:
        seconds.append(await manager.hand_back(call_id))

    await _act(request, call_id, run())
    note_action(request, call_id, "hand_back", {"seconds": round(seconds[0], 1)})
    return OperatorAck(call_id=call_id, status="handed-back")
