"""An operator's actions on a live call, and who did them.

* ``POST /v1/calls/{id}/say`` — the agent speaks ``text`` to the caller now (the provider's
  ``say``: 409 when the call is not bridged yet or its provider cannot speak arbitrary text).

Every operator action — this one, and ``hangup`` and ``transfer`` in ``control_api`` — is put
on the call's timeline as ``operator.<action>`` with ``by`` (``"operator"``: the holder of the
API token, the only identity the API knows) and ``via`` (``"console"`` when the request carries
``X-Switchboard-Client: console``, else ``"api"``), so the record says who acted and how.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from switchboard.app.auth import require_token
from switchboard.app.cluster_control import note_on_call, send_to_owner
from switchboard.app.state import get_state
from switchboard.bridge.manager import CallManager
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
    },
)


class Say(BaseModel):
    text: str = Field(min_length=1, max_length=2000, description="what the agent says now")


class OperatorAck(BaseModel):
    call_id: str
    status: str


def _manager(request: Request) -> CallManager:
    calls = get_state(request).calls
    if not isinstance(calls, CallManager):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "call control is unavailable")
    return calls


def actor(request: Request) -> dict[str, str]:
    """Who acts: the API token's holder, through the console or a program."""
    client = request.headers.get("x-switchboard-client", "")
    return {"by": "operator", "via": "console" if client == "console" else "api"}


def note_action(request: Request, call_id: str, action: str, data: dict[str, Any]) -> None:
    """Put ``operator.<action>`` on a live call's timeline (and the live events), with who
    did it; nothing when the call is no longer live (or lives on another node, which notes
    it when the command arrives)."""
    note_on_call(get_state(request).calls, call_id, action, {**data, **actor(request)})


@operator_router.post(
    "/calls/{call_id}/say",
    response_model=OperatorAck,
    responses={409: {"description": "not bridged yet, or the provider cannot speak text"}},
)
async def say(call_id: str, body: Say, request: Request) -> OperatorAck:
    """The agent speaks ``text`` to the caller now, as its next reply."""
    manager = _manager(request)
    if call_id not in manager.calls:  # another node's call: that node has it said
        command = ControlCommand(call_id, "say", reason=actor(request)["via"], text=body.text)
        await send_to_owner(get_state(request), command)
        return OperatorAck(call_id=call_id, status="saying")
    active = manager.calls.get(call_id)
    if active is None or active.ending:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live call {call_id}")
    if active.session is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "the call's media has not started yet")
    try:
        await active.session.provider.say(body.text)
    except UnsupportedOperation as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    note_action(request, call_id, "say", {"text": body.text})
    logger.info("call %s: operator said %d characters", call_id, len(body.text))
    return OperatorAck(call_id=call_id, status="saying")
