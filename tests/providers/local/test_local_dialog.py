"""The rule/intent dialog engine: intents, slots, tool calls and tool results (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchboard.errors import ConfigError
from switchboard.providers.local.agent import load_agent, packaged_agent_path, render
from switchboard.providers.local.dialog import RuleDialog
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
)

ORDER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "check_order_status",
    "description": "Look up an order",
    "parameters": {"type": "object", "properties": {"order_number": {"type": "string"}}},
}


def text_of(events: list[LLMEvent]) -> str:
    return " ".join(e.text for e in events if isinstance(e, LLMTextDelta))


def calls_of(events: list[LLMEvent]) -> list[LLMFunctionCall]:
    return [e for e in events if isinstance(e, LLMFunctionCall)]


class Conversation:
    """Keeps a history the way the pipeline engine does and asks the dialog for each turn."""

    def __init__(self, dialog: RuleDialog, tools: list[dict[str, Any]] | None = None) -> None:
        self.dialog = dialog
        self.tools = tools or []
        self.history: list[ChatMessage] = []

    def turn(self, message: ChatMessage) -> list[LLMEvent]:
        self.history.append(message)
        events = self.dialog.respond(self.history, self.tools)
        assert isinstance(events[-1], LLMDone)
        self.history.append(
            ChatMessage(
                role="assistant", content=text_of(events), tool_calls=tuple(calls_of(events))
            )
        )
        return events

    def user(self, text: str) -> list[LLMEvent]:
        return self.turn(ChatMessage(role="user", content=text))

    def result(self, call: LLMFunctionCall, result: Any) -> list[LLMEvent]:
        content = result if isinstance(result, str) else json.dumps(result)
        return self.turn(
            ChatMessage(role="tool", content=content, tool_call_id=call.call_id, name=call.name)
        )


@pytest.fixture
def talk() -> Conversation:
    return Conversation(RuleDialog(), [ORDER_TOOL])


@pytest.mark.parametrize(
    ("utterance", "keyword"),
    [
        ("What are your hours?", "Monday"),
        ("when do you close today", "Monday"),
        ("are you open on saturdays", "Saturday"),
        ("Where are you located?", "Main Street"),
        ("what's your address", "Main Street"),
    ],
)
def test_information_intents(talk: Conversation, utterance: str, keyword: str) -> None:
    events = talk.user(utterance)
    assert keyword in text_of(events)
    assert calls_of(events) == []


@pytest.mark.parametrize(
    ("utterance", "department"),
    [
        ("transfer me to billing", "billing"),
        ("Please transfer me to the billing department.", "billing"),
        ("place transfer me to the billing department", "billing"),  # a Whisper slip
        ("can I speak to someone in sales", "sales"),
        ("connect me to support please", "support"),
        ("Can I speak to a representative about my last payment?", "billing"),
    ],
)
def test_transfer_calls_the_tool(talk: Conversation, utterance: str, department: str) -> None:
    events = talk.user(utterance)
    (call,) = calls_of(events)
    assert call.name == "transfer_call"
    assert call.arguments == {"destination": department}
    assert department in text_of(events)
    assert events[-1] == LLMDone(finish_reason="tool_calls")


def test_transfer_asks_for_missing_department(talk: Conversation) -> None:
    first = talk.user("I'd like to talk to a person")
    assert calls_of(first) == []
    assert "Which department" in text_of(first)
    second = talk.user("sales please")
    (call,) = calls_of(second)
    assert call.arguments == {"destination": "sales"}


def test_reask_then_give_up(talk: Conversation) -> None:
    talk.user("transfer me")
    again = talk.user("hmm let me think")
    assert "Which department" in text_of(again)
    gave_up = talk.user("hmm let me think")
    assert "Which department" not in text_of(gave_up)
    assert calls_of(gave_up) == []


def test_goodbye_ends_the_call(talk: Conversation) -> None:
    events = talk.user("Yes, that is correct. Thank you very much, goodbye.")
    (call,) = calls_of(events)
    assert call.name == "end_call"
    assert "Goodbye" in call.arguments["goodbye"]
    assert text_of(events) == ""  # the bridge says the goodbye (end_call's argument)


def test_message_taking_captures_the_next_utterance() -> None:
    take = {"type": "function", "name": "take_message", "parameters": {"type": "object"}}
    talk = Conversation(RuleDialog(), [take])
    prompt = talk.user("Can I leave a message?")
    assert "message" in text_of(prompt)
    assert calls_of(prompt) == []
    said = "This is John, please call me back about the invoice."
    (call,) = calls_of(talk.user(said))
    assert call.name == "take_message"
    assert call.arguments == {"message": said}
    after = talk.result(call, {"saved": True})
    assert "taken your message" in text_of(after)


def test_message_without_the_tool_still_answers(talk: Conversation) -> None:
    talk.user("I want to leave a message")
    events = talk.user("tell Mary the package arrived")
    assert calls_of(events) == []
    assert "noted your message" in text_of(events)


def test_user_tool_with_spoken_number_and_result_template(talk: Conversation) -> None:
    ask = talk.user("I would like to check the status of my order.")
    assert "order number" in text_of(ask)
    (call,) = calls_of(talk.user("it's four five seven two nine"))
    assert call.name == "check_order_status"
    assert call.arguments == {"order_number": "45729"}
    after = talk.result(call, {"status": "out for delivery"})
    assert text_of(after) == "Order 45729 is out for delivery."
    assert calls_of(after) == []


def test_tool_error_uses_on_error(talk: Conversation) -> None:
    talk.user("where is my order")
    (call,) = calls_of(talk.user("45729"))
    after = talk.result(call, {"error": "not found"})
    assert text_of(after) == "Sorry, I couldn't find order 45729."


def test_unoffered_user_tool_is_not_called() -> None:
    talk = Conversation(RuleDialog(), [])
    talk.user("has my order shipped")
    events = talk.user("one two three")
    assert calls_of(events) == []
    assert "can't look up orders" in text_of(events)


def test_switching_intent_while_a_slot_is_pending(talk: Conversation) -> None:
    talk.user("transfer me")
    events = talk.user("actually, what are your hours?")
    assert "Monday" in text_of(events)


def test_unknown_speech_gets_rotating_fallbacks(talk: Conversation) -> None:
    first = text_of(talk.user("purple elephants dance"))
    second = text_of(talk.user("purple elephants dance"))
    assert first and second and first != second
    assert talk.dialog.trace[-2:] == [None, None]


@pytest.mark.anyio
async def test_stream_yields_the_same_events() -> None:
    dialog = RuleDialog()
    history = [ChatMessage(role="user", content="transfer me to billing")]
    events = [e async for e in dialog.stream(system_prompt=None, history=history, tools=[])]
    assert [type(e) for e in events] == [LLMTextDelta, LLMFunctionCall, LLMDone]
    await dialog.aclose()


def test_custom_agent_yaml(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "greeting: Hi\n"
        "slots:\n  party: {type: number}\n"
        "intents:\n"
        "  - name: book\n"
        "    examples: [book a table, I want a reservation]\n"
        "    slots: [party]\n"
        "    ask: {party: 'How many people?'}\n"
        "    reply: A table for {party}, done.\n",
        encoding="utf-8",
    )
    talk = Conversation(RuleDialog(load_agent(path)))
    assert text_of(talk.user("I want to book a table")) == "How many people?"
    assert text_of(talk.user("twenty three of us")) == "A table for 23, done."


@pytest.mark.parametrize(
    "body",
    [
        "intents: [{name: x, examples: [a], slots: [nope]}]",
        "intents: [{name: x}]",
        "unknown_key: 1",
        "intents: [oops",
    ],
)
def test_invalid_agent_files_raise_config_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_agent(path)


def test_missing_agent_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_agent("/nonexistent/agent.yaml")


def test_packaged_agent_is_valid() -> None:
    agent = load_agent(packaged_agent_path())
    names = {i.name for i in agent.intents}
    assert {"hours", "location", "take_message", "transfer", "goodbye"} <= names
    assert agent.greeting


def test_render_tolerates_missing_fields() -> None:
    assert render("Order {n} is {result[status]}.", {"n": 5, "result": "x"}) == "Order 5 is ."
    with pytest.raises(ConfigError):
        render("broken {", {})
