"""The strict conformance check catches what SDK validation alone lets through."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from deepgram.listen.v1.types import ListenV1Results
from deepgram.speak.v1.types import SpeakV1Text
from google.genai import types
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import TypeAdapter, ValidationError

from tests.conformance import conform, undeclared_keys

FIXTURES = Path(__file__).parent / "fixtures"
SESSION_UPDATE: dict[str, Any] = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "instructions": "Be brief.",
        "audio": {"input": {"format": {"type": "audio/pcmu"}}},
        "tools": [{"type": "function", "name": "end_call", "parameters": {"type": "object"}}],
    },
}


def planted(message: dict[str, Any], path: list[str | int], key: str) -> dict[str, Any]:
    """A copy of ``message`` with ``key`` added to the dict at ``path``."""
    out = copy.deepcopy(message)
    node: Any = out
    for step in path:
        node = node[step]
    node[key] = "x"
    return out


@pytest.mark.parametrize(
    ("path", "key", "where"),
    [
        ([], "evnt_id", "$.evnt_id"),
        (["session"], "instructionz", "$.session.instructionz"),
        (["session", "audio", "input"], "formatt", "$.session.audio.input.formatt"),
        (["session", "tools", 0], "descriptoin", "$.session.tools[0].descriptoin"),
    ],
)
def test_openai_misspelling_passes_the_sdk_but_not_conform(
    path: list[str | int], key: str, where: str
) -> None:
    conform(RealtimeClientEvent, SESSION_UPDATE)  # the well-spelled message conforms
    bad = planted(SESSION_UPDATE, path, key)
    TypeAdapter(RealtimeClientEvent).validate_python(bad)  # the SDK alone accepts it
    with pytest.raises(AssertionError, match=f"SessionUpdateEvent: {re.escape(where)}$"):
        conform(RealtimeClientEvent, bad)


def test_openai_discriminated_union_walks_the_chosen_class() -> None:
    created = {"type": "response.create", "response": {"instructions": "Hi.", "x": 1}}
    with pytest.raises(AssertionError, match=r"ResponseCreateEvent: \$\.response\.x"):
        conform(RealtimeClientEvent, created)
    event = {"type": "error", "event_id": "e1", "error": {"type": "server_error", "message": "m"}}
    conform(RealtimeServerEvent, event)
    with pytest.raises(AssertionError, match=r"\$\.error\.cod$"):
        conform(RealtimeServerEvent, planted(event, ["error"], "cod"))


def test_deepgram_fixture_misspelling_is_caught_deep_in_lists() -> None:
    results = json.loads((FIXTURES / "deepgram" / "listen_server_messages.json").read_text())
    final = results["results_final"]
    conform(ListenV1Results, final)
    bad = planted(final, ["channel", "alternatives", 0], "confidance")
    ListenV1Results.model_validate(bad)  # Deepgram's types allow extras
    with pytest.raises(AssertionError, match=r"\$\.channel\.alternatives\[0\]\.confidance"):
        conform(ListenV1Results, bad)
    with pytest.raises(AssertionError, match=r"\$\.txt"):
        conform(SpeakV1Text, {"type": "Speak", "text": "Hi", "txt": "Hi"})


def test_gemini_accepts_both_cases_and_refuses_unknown_keys() -> None:
    setup = {"setup": {"model": "models/m", "generationConfig": {"responseModalities": ["AUDIO"]}}}
    conform(types.LiveClientMessage, setup)
    snake = {"setup": {"model": "models/m", "generation_config": {"response_modalities": []}}}
    conform(types.LiveClientMessage, snake)
    with pytest.raises(ValidationError):  # google-genai forbids extras itself
        conform(types.LiveClientMessage, planted(setup, ["setup"], "generationConfg"))


def test_free_form_dicts_are_not_walked_as_models() -> None:
    tool = {"type": "function", "name": "f", "parameters": {"anything": {"goes": 1}}}
    assert undeclared_keys(conform(RealtimeClientEvent, SESSION_UPDATE), SESSION_UPDATE) == []
    event = {"type": "session.update", "session": {"type": "realtime", "tools": [tool]}}
    conform(RealtimeClientEvent, event)
