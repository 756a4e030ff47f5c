"""The emulator's own control API (not Telnyx's): place a call on a running emulator remotely.

``switchboard emulate telnyx`` runs one emulator that the app is configured against (its
``TELNYX_BASE_URL`` and ``TELNYX_PUBLIC_KEY``); ``switchboard call --carrier telnyx`` then asks
*that* emulator to place the call, because only it holds the key the app trusts and the call
state the app's commands address.

* ``GET  /_emulator/health`` → ``{"emulator": "telnyx"}``
* ``POST /_emulator/calls`` ``{to, from, webhook_url, audio_wav_b64?, dtmf?}`` →
  ``{"call_control_id": ...}``
* ``GET  /_emulator/calls/{id}/report?wait_s=30`` → the report (200) or 202 while running.

Both call routes take the same Bearer key as the Call Control API.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, Protocol

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from switchboard.emulators.telnyx.calls import EmulatedCall
from switchboard.emulators.telnyx.report import TelnyxCallReport
from switchboard.errors import TelephonyError

__all__ = [
    "ControlledEmulator",
    "control_routes",
    "find_emulator",
    "place_remote_call",
    "report_from_json",
    "report_to_json",
]


class ControlledEmulator(Protocol):
    """What the control API needs of the emulator (:class:`~.server.TelnyxEmulator`)."""

    @property
    def api_key(self) -> str:
        """The Bearer key both APIs accept."""
        ...

    @property
    def public_key_b64(self) -> str:
        """The webhook signing key's public half (the app's ``TELNYX_PUBLIC_KEY``)."""
        ...

    @property
    def calls(self) -> Mapping[str, EmulatedCall]:
        """Every call by ``call_control_id``."""
        ...

    async def place_inbound_call(
        self, *, to: str, from_: str, audio: bytes | None, webhook_url: str, dtmf: str
    ) -> EmulatedCall:
        """A caller dials ``to``; returns the call."""
        ...


def report_to_json(report: TelnyxCallReport) -> dict[str, Any]:
    """A JSON-able dict of ``report`` (the recording as base64 PCM16)."""
    doc = asdict(report)
    doc["heard_pcm"] = base64.b64encode(report.heard_pcm).decode("ascii")
    doc["webhooks"] = [list(w) for w in report.webhooks]
    return doc


def report_from_json(doc: dict[str, Any]) -> TelnyxCallReport:
    """Inverse of :func:`report_to_json` (unknown keys are ignored)."""
    known = {f.name for f in fields(TelnyxCallReport)}
    values = {k: v for k, v in doc.items() if k in known}
    values["heard_pcm"] = base64.b64decode(doc.get("heard_pcm", ""))
    values["webhooks"] = [(str(name), int(status)) for name, status in doc.get("webhooks", [])]
    return TelnyxCallReport(**values)


def control_routes(emu: ControlledEmulator) -> list[Route]:
    """Starlette routes of the control API for ``emu``."""

    def denied(request: Request) -> JSONResponse | None:
        if request.headers.get("authorization", "") != f"Bearer {emu.api_key}":
            return JSONResponse(
                {"errors": [{"code": "10009", "title": "Authentication failed"}]}, 401
            )
        return None

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"emulator": "telnyx", "public_key": emu.public_key_b64})

    async def place(request: Request) -> JSONResponse:
        if (refusal := denied(request)) is not None:
            return refusal
        try:
            body = await request.json()
            audio = base64.b64decode(body["audio_wav_b64"]) if body.get("audio_wav_b64") else None
            call = await emu.place_inbound_call(
                to=str(body["to"]),
                from_=str(body["from"]),
                audio=audio,
                webhook_url=str(body["webhook_url"]),
                dtmf=str(body.get("dtmf", "")),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            return JSONResponse({"error": f"bad request: {exc!r}"}, 400)
        return JSONResponse({"call_control_id": call.call_control_id}, 201)

    async def report(request: Request) -> JSONResponse:
        if (refusal := denied(request)) is not None:
            return refusal
        call = emu.calls.get(request.path_params["ccid"])
        if call is None:
            return JSONResponse({"error": "unknown call"}, 404)
        wait_s = min(float(request.query_params.get("wait_s", "0") or 0), 60.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.done.wait(), wait_s)
        if call.report is None:
            return JSONResponse({"status": "running"}, 202)
        return JSONResponse(report_to_json(call.report))

    return [
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/calls", place, methods=["POST"]),
        Route("/_emulator/calls/{ccid}/report", report, methods=["GET"]),
    ]


async def place_remote_call(
    emulator: str,
    *,
    api_key: str,
    to: str,
    from_: str,
    webhook_url: str,
    audio: bytes | None,
    dtmf: str = "",
    timeout_s: float = 600.0,
) -> TelnyxCallReport:
    """Ask the emulator at ``emulator`` to place one call and wait for its report."""
    headers = {"Authorization": f"Bearer {api_key}"}
    body: dict[str, Any] = {"to": to, "from": from_, "webhook_url": webhook_url, "dtmf": dtmf}
    if audio is not None:
        body["audio_wav_b64"] = base64.b64encode(audio).decode("ascii")
    base = emulator.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=60.0) as client:
            placed = await client.post(f"{base}/_emulator/calls", json=body, headers=headers)
            placed.raise_for_status()
            ccid = placed.json()["call_control_id"]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while True:
                answer = await client.get(
                    f"{base}/_emulator/calls/{ccid}/report", params={"wait_s": 30}, headers=headers
                )
                answer.raise_for_status()
                if answer.status_code == 200:
                    return report_from_json(answer.json())
                if loop.time() > deadline:
                    raise TelephonyError(f"call {ccid} did not end within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        raise TelephonyError(f"Telnyx emulator at {base}: {exc}") from exc


async def find_emulator(base_url: str) -> bool:
    """Whether a Telnyx emulator answers at ``base_url`` (only loopback URLs are probed)."""
    host = httpx.URL(base_url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        return False
    try:
        async with httpx.AsyncClient(timeout=1.0) as client:
            answer = await client.get(base_url.rstrip("/") + "/_emulator/health")
            return answer.status_code == 200 and answer.json().get("emulator") == "telnyx"
    except (httpx.HTTPError, ValueError):
        return False
