"""Our Twilio REST request bodies against Twilio's published API description and its SDK.

``fixtures/twilio/rest_calls.json`` is Twilio's own OpenAPI description of CreateCall and
UpdateCall (parameter names, types, enums, required and mutually exclusive parameters) with the
documentation's examples. Every form the adapter sends to the emulator is checked against it,
and against the form the official ``twilio`` SDK builds for the same call: the names come from
Twilio, never from this test.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from twilio.http.response import Response
from twilio.rest import Client

from switchboard.emulators.twilio import TwilioEmulator
from switchboard.telephony.twilio import TwilioAdapter

pytestmark = pytest.mark.anyio
SPEC: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "twilio" / "rest_calls.json").read_text()
)
TO, FROM, PUBLIC = "+15551112222", "+15550001111", "https://sb.example.com"
_ENDPOINT = re.compile(r"^(\+[1-9]\d{1,14}|sip:\S+|client:\S+)$")


def problems(operation: str, form: list[tuple[str, str]]) -> list[str]:
    """Where ``form`` departs from Twilio's published ``operation`` (empty when it conforms)."""
    spec = SPEC[operation]
    params: dict[str, Any] = spec["parameters"]
    names = Counter(name for name, _ in form)
    found = [f"missing required {name}" for name in spec["required"] if name not in names]
    if spec["one_of"] and sum(name in names for name in spec["one_of"]) != 1:
        found.append(f"exactly one of {spec['one_of']} is needed")
    for name, value in form:
        schema = params.get(name)
        if schema is None:
            found.append(f"{name} is not a {spec['operation']} parameter")
            continue
        if schema["type"] != "array" and names[name] > 1:
            found.append(f"{name} repeated")
        item = schema.get("items", schema)
        if item["type"] == "integer" and not value.isdigit():
            found.append(f"{name}={value!r} is not an integer")
        if "enum" in item and value not in item["enum"]:
            found.append(f"{name}={value!r} is not one of {item['enum']}")
        match item.get("format"):
            case "uri" if not (
                urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc
            ):
                found.append(f"{name}={value!r} is not an absolute URL")
            case "twiml" if ET.fromstring(value).tag != "Response":  # noqa: S314  # our own TwiML
                found.append(f"{name} is not a <Response>")
            case "endpoint" if not _ENDPOINT.match(value):
                found.append(f"{name}={value!r} is not a phone number, SIP or client address")
    return found


def test_the_documented_examples_conform_and_mistakes_do_not() -> None:
    for operation in ("create_call", "update_call"):
        for example in SPEC[operation]["examples"]:
            assert problems(operation, [(k, v) for k, v in example]) == []
    create = [(k, v) for k, v in SPEC["create_call"]["examples"][0]]
    assert problems("create_call", [*create, ("Timout", "20")]) == [
        "Timout is not a CreateCall parameter"
    ]
    assert problems("create_call", [*create, ("Timeout", "20s"), ("Twiml", "<Response/>")]) == [
        "exactly one of ['Url', 'Twiml', 'ApplicationSid'] is needed",
        "Timeout='20s' is not an integer",
    ]
    assert problems("update_call", [("Status", "ended")]) == [
        "Status='ended' is not one of ['canceled', 'completed']"
    ]


class _RecordingHttp:
    """Stands in for the twilio SDK's ``HttpClient``: records what it would send."""

    is_async = False

    def __init__(self) -> None:
        self.forms: list[list[tuple[str, str]]] = []

    def request(
        self,
        method: str,
        url: str,
        params: object = None,
        data: dict[str, Any] | None = None,
        headers: object = None,
        auth: object = None,
        timeout: object = None,
        allow_redirects: bool = False,
    ) -> Response:
        form: list[tuple[str, str]] = []
        for name, value in (data or {}).items():
            values = value if isinstance(value, list) else [value]
            form += [(name, str(v)) for v in values]
        self.forms.append(form)
        return Response(200, json.dumps({"sid": "CA" + "0" * 32}))


def sdk_forms() -> list[list[tuple[str, str]]]:
    """The SDK's forms for the calls the adapter places in the test below."""
    http = _RecordingHttp()
    calls = Client("AC" + "1" * 32, "token", http_client=http).calls
    events = ["initiated", "ringing", "answered", "completed"]
    status = f"{PUBLIC}/twilio/status"
    calls.create(
        to=TO,
        from_=FROM,
        url=f"{PUBLIC}/twilio/voice?call_id=call-1",
        status_callback=status,
        status_callback_event=events,
        timeout=20,
    )
    hold = '<Response><Pause length="60"/></Response>'
    calls.create(
        to=TO, from_=FROM, twiml=hold, status_callback=status, status_callback_event=events
    )
    return http.forms


async def test_every_form_the_adapter_sends_conforms() -> None:
    async with TwilioEmulator(speed=10.0) as emu:
        adapter = TwilioAdapter(
            account_sid=emu.account_sid,
            auth_token=emu.auth_token,
            base_url=emu.base_url,
            public_url=PUBLIC,
        )
        try:
            await adapter.place_call(to=TO, from_=FROM, call_id="call-1", timeout_s=20)
            hold = '<Response><Pause length="60"/></Response>'
            sid = await adapter.place_call(to=TO, from_=FROM, twiml=hold)
            await adapter.send_dtmf(sid, "12#")
            await adapter.transfer_call(sid, "sip:desk@example.com", caller_id=FROM)
            await adapter.hang_up(sid)
        finally:
            await adapter.aclose()
    posts = [r for r in emu.requests if r.method == "POST"]
    operations = ["create_call" if r.path.endswith("/Calls.json") else "update_call" for r in posts]
    assert operations == ["create_call"] * 2 + ["update_call"] * 3
    for operation, request in zip(operations, posts, strict=True):
        assert problems(operation, list(request.form)) == [], request
    # the official SDK, given the same call, builds the same forms
    for ours, theirs in zip(posts[:2], sdk_forms(), strict=True):
        assert sorted(ours.form) == sorted(theirs)
