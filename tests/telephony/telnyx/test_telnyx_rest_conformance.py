"""Our Call Control request bodies against Telnyx's published examples and parameter lists.

``fixtures/telnyx/call_commands.json`` holds, for every command the adapter sends, the vendor's
own all-parameters example body and its declared fields, required fields and enums (from the
Telnyx SDK generated from Telnyx's OpenAPI description; see the fixture's README). Field names
come from there, never from this test: a misspelled or invented field fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.telephony.telnyx import TelnyxAdapter, decode_client_state
from switchboard.telephony.telnyx.rest import StreamCodec

pytestmark = pytest.mark.anyio
KEY = "KEY_conformance"
COMMANDS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "telnyx" / "call_commands.json").read_text()
)
assert COMMANDS.pop("_source")


def _json_type(value: object) -> str:
    # bool before int: JSON true is not a number
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "null"


def problems(command: str, body: dict[str, Any]) -> list[str]:
    """Where ``body`` departs from Telnyx's published ``command`` (empty when it conforms)."""
    spec = COMMANDS[command]
    found = [f"missing required {name!r}" for name in spec["required"] if name not in body]
    for name, value in body.items():
        if name not in spec["fields"]:
            found.append(f"{name!r} is not a {command} field")
            continue
        example = spec["example"][name]
        if _json_type(value) != _json_type(example):
            found.append(f"{name!r} is {_json_type(value)}, Telnyx's example {_json_type(example)}")
        if name in spec["enums"] and value not in spec["enums"][name]:
            found.append(f"{name}={value!r} is not one of {spec['enums'][name]}")
    return found


def test_the_vendor_examples_conform_and_a_misspelling_does_not() -> None:
    for command, spec in COMMANDS.items():
        assert problems(command, spec["example"]) == [], command
    dial = dict(COMMANDS["dial"]["example"], stream_codecc="PCMU")
    assert problems("dial", dial) == ["'stream_codecc' is not a dial field"]
    wrong = dict(COMMANDS["streaming_start"]["example"], stream_bidirectional_sampling_rate="8000")
    assert problems("streaming_start", wrong) == [
        "'stream_bidirectional_sampling_rate' is string, Telnyx's example integer",
        "stream_bidirectional_sampling_rate='8000' is not one of "
        "[8000, 16000, 22050, 24000, 48000]",
    ]
    assert problems("transfer", {"destination": "+1"}) == [
        "missing required 'to'",
        "'destination' is not a transfer field",
    ]


async def test_every_command_the_adapter_sends_conforms() -> None:
    async with TelnyxEmulator(api_key=KEY) as emu:
        adapter = TelnyxAdapter(api_key=KEY, base_url=emu.base_url, connection_id="conn-1")
        try:
            # outbound, the way CallManager.place_call dials (our call id rides along)
            await adapter.place_call(to="+15550001111", from_="+15550002222", call_id="call_x")
            calls = [
                await emu.place_inbound_call(to="+15550001111", from_="+1555000222" + str(n))
                for n in range(4)
            ]
            first, second, *streamed = [call.call_control_id for call in calls]
            for ccid in (first, second, *streamed):
                await adapter.answer_call(ccid, client_state="Y2FsbF95")
            await adapter.send_dtmf(first, "12#")
            await adapter.stop_streaming(first, stream_id="1edb94f9-7ef0-4150-b502-e0ebadfd9491")
            await adapter.transfer_call(first, "sip:desk@example.com")
            await adapter.hang_up(second)
            # nothing serves these URLs: the emulated callers' media legs fail afterwards
            codecs: list[tuple[StreamCodec, int]] = [("PCMU", 8000), ("L16", 16000)]
            for ccid, (codec, rate) in zip(streamed, codecs, strict=True):
                await adapter.start_streaming(
                    ccid, stream_url="ws://127.0.0.1:9/telnyx/media", codec=codec, sample_rate=rate
                )
        finally:
            await adapter.aclose()
    sent = [(command, body) for _ccid, command, body in emu.commands]
    assert [c for c, _ in sent] == [
        "dial",
        *(["answer"] * 4),
        "send_dtmf",
        "streaming_stop",
        "transfer",
        "hangup",
        "streaming_start",
        "streaming_start",
    ]
    for command, body in sent:
        assert problems(command, body) == [], command
    # the call id travels the only way Telnyx echoes it back: client_state on the webhooks
    assert decode_client_state(sent[0][1]["client_state"]) == "call_x"
