"""The cluster's records and messages: JSON round trips, and what a receiver refuses (pure)."""

from __future__ import annotations

import json

import pytest

from switchboard.cluster.records import (
    CallEntry,
    ControlCommand,
    Handoff,
    check_name,
    decode_message,
    encode_message,
)
from switchboard.cluster.redis import describe_url
from switchboard.errors import RemoteProtocolError


def test_messages_round_trip_through_json() -> None:
    command = ControlCommand("call-1", "transfer", destination="+14155550100", sender="node-b")
    handoff = Handoff("call-1", "telnyx.webhook", '{"data":{"event_type":"call.hangup"}}')
    for message in (command, handoff):
        text = encode_message(message)
        assert decode_message(text) == message
        assert decode_message(text.encode()) == message
    assert json.loads(encode_message(command))["type"] == "command"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"type": "gossip", "call_id": "c"}',
        '{"type": "command", "call_id": "c", "action": "explode"}',
        '{"type": "command", "call_id": 7, "action": "hangup"}',
        '{"type": "command", "call_id": "c", "action": "hangup", "issued_at": true}',
        '{"type": "command", "call_id": "c", "action": "hangup", "extra": 1}',
        '{"type": "handoff", "call_id": "c", "kind": "k"}',
        '{"type": "handoff", "call_id": "c", "kind": "k", "body": {"nested": 1}}',
    ],
)
def test_a_malformed_message_is_a_remote_protocol_error(text: str) -> None:
    with pytest.raises(RemoteProtocolError, match="malformed cluster message"):
        decode_message(text)


def test_directory_entries_round_trip_as_flat_strings() -> None:
    entry = CallEntry("call-1", "node-a", "twilio", "CA1", "support", "openai_realtime", 1.5)
    fields = entry.to_fields()
    assert all(isinstance(value, str) for value in fields.values())
    assert CallEntry.from_fields(fields) == entry
    with pytest.raises(RemoteProtocolError, match="unknown state"):
        CallEntry.from_fields({**fields, "state": "zombie"})
    with pytest.raises(RemoteProtocolError, match="call_id"):
        CallEntry.from_fields({k: v for k, v in fields.items() if k != "call_id"})


@pytest.mark.parametrize("bad", ["", "a|b", "{tag}", "has space", "-leading", "x" * 129])
def test_names_that_would_break_keys_or_members_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid node id"):
        check_name(bad, "node id")


def test_names_in_use_are_accepted() -> None:
    for good in ("node-a", "host.example-123-4f2a9c", "agent:support", "node:web-1", "twilio"):
        assert check_name(good, "scope") == good


def test_server_descriptions_never_carry_credentials() -> None:
    assert describe_url("redis://user:s3cret@db.internal:6380/2") == "db.internal:6380/2"
    assert describe_url("rediss://:s3cret@db.internal") == "db.internal:6379/0"
    assert describe_url("unix:///run/redis.sock?password=s3cret") == "unix:/run/redis.sock"
