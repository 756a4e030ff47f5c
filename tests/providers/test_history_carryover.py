"""A session that starts with a conversation carried over (a failover): what each provider
sends, checked against the official SDKs' types (strictly)."""

from __future__ import annotations

import json

from tests.providers.gemini_live.test_gemini_live_protocol import ready, validate_client
from tests.providers.openai_realtime.test_openai_protocol import sent, srv

from switchboard.providers.base import SessionConfig
from switchboard.providers.gemini_live import GeminiLiveProtocol, LiveSetup
from switchboard.providers.openai_realtime.protocol import RealtimeProtocol
from switchboard.providers.types import HistoryTurn

HISTORY = [
    HistoryTurn("assistant", "Hello, thanks for calling."),
    HistoryTurn("user", "What are your opening hours?"),
    HistoryTurn("assistant", "We are open nine"),  # cut at a barge-in: what was heard
]


def test_openai_gets_the_conversation_as_items_after_its_session_update() -> None:
    proto = RealtimeProtocol(SessionConfig(history=list(HISTORY)), model="gpt-realtime")
    events = sent(proto.start())
    assert [e["type"] for e in events] == ["session.update"] + ["conversation.item.create"] * 3
    items = [e["item"] for e in events[1:]]
    assert [(i["role"], i["content"][0]["type"], i["content"][0]["text"]) for i in items] == [
        ("assistant", "output_text", "Hello, thanks for calling."),
        ("user", "input_text", "What are your opening hours?"),
        ("assistant", "output_text", "We are open nine"),
    ]
    proto.receive(srv(type="session.updated", session={"type": "realtime"}))
    # a reconnect replays the history once (restore), never the seeded items twice
    restored = sent(proto.restore())
    assert len([e for e in restored if e["type"] == "conversation.item.create"]) == 3


def test_a_new_openai_session_sends_no_items() -> None:
    proto = RealtimeProtocol(SessionConfig(), model="gpt-realtime")
    assert [e["type"] for e in sent(proto.start())] == ["session.update"]


def test_gemini_gets_the_conversation_as_client_content_without_turn_complete() -> None:
    config = SessionConfig(
        model_id="gemini-2.5-flash-native-audio-preview-12-2025", history=list(HISTORY)
    )
    proto = ready(GeminiLiveProtocol(LiveSetup.from_config(config)))
    (text,) = proto.history(config.history)
    message = validate_client(text)
    assert message == {
        "clientContent": {
            "turns": [
                {"role": "model", "parts": [{"text": "Hello, thanks for calling."}]},
                {"role": "user", "parts": [{"text": "What are your opening hours?"}]},
                {"role": "model", "parts": [{"text": "We are open nine"}]},
            ],
            "turnComplete": False,
        }
    }
    assert proto.history([]) == []
    assert json.loads(text)["clientContent"]["turnComplete"] is False
