"""Pure tests of the turn manager: turn-taking, sentences, barge-in, tool loop, history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from switchboard.media import AudioChunk, AudioFormat, Usage
from switchboard.providers.base import ProviderEventType
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMFunctionCall,
    LLMTextDelta,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)
from switchboard.providers.pipeline.history import ConversationHistory
from switchboard.providers.pipeline.turns import (
    CancelLLM,
    CancelSpeech,
    EmitEvent,
    FinalizeSTT,
    RecordLatency,
    SpeakSentence,
    StartLLM,
    TurnAction,
    TurnManager,
    heard_text,
)


def events(actions: list[TurnAction], kind: ProviderEventType | None = None) -> list[EmitEvent]:
    return [a for a in actions if isinstance(a, EmitEvent) and (kind is None or a.type is kind)]


def one(actions: list[TurnAction], cls: type[Any]) -> Any:
    found = [a for a in actions if isinstance(a, cls)]
    assert len(found) == 1, actions
    return found[0]


def ulaw_ms(ms: int) -> AudioChunk:
    return AudioChunk(b"\xff" * (8 * ms), AudioFormat.ULAW, 8000)


def caller_says(tm: TurnManager, text: str, now: float = 0.0) -> list[TurnAction]:
    actions = tm.on_stt(SttSpeechStarted(audio_ms=100), now)
    actions += tm.on_stt(SttTranscript(text.split()[0], is_final=False), now)
    actions += tm.on_stt(SttTranscript(text, is_final=True, speech_final=True, end_ms=900), now)
    return actions


def speak_all(
    tm: TurnManager, actions: Sequence[TurnAction], now: float, ms: int = 400
) -> list[TurnAction]:
    """Play every SpeakSentence in ``actions`` through fake TTS; return what that produced."""
    out: list[TurnAction] = []
    for action in actions:
        if isinstance(action, SpeakSentence):
            out += tm.on_audio(action.response_id, action.sentence_id, ulaw_ms(ms), now)
            out += tm.on_sentence_done(action.response_id, action.sentence_id)
    return out


def test_speech_final_ends_turn_and_starts_llm() -> None:
    tm = TurnManager()
    actions = caller_says(tm, "what are your hours", now=10.0)
    assert [e.type for e in events(actions)] == [
        ProviderEventType.SPEECH_STARTED,
        ProviderEventType.CALLER_TRANSCRIPT,
        ProviderEventType.SPEECH_STOPPED,
        ProviderEventType.CALLER_TRANSCRIPT,
    ]
    final = events(actions, ProviderEventType.CALLER_TRANSCRIPT)[-1]
    assert final.data == {"text": "what are your hours", "final": True, "item_id": "item_1"}
    start = one(actions, StartLLM)
    assert start.history == (ChatMessage(role="user", content="what are your hours"),)


def test_finals_accumulate_until_utterance_end() -> None:
    tm = TurnManager()
    assert not [
        a for a in tm.on_stt(SttTranscript("I need", is_final=True), 0) if isinstance(a, StartLLM)
    ]
    tm.on_stt(SttTranscript("a table", is_final=True), 0)
    actions = tm.on_stt(SttUtteranceEnd(last_word_end_ms=1500), 0)
    assert one(actions, StartLLM).history[-1].content == "I need a table"


def test_utterance_end_with_only_interim_text_finalizes() -> None:
    tm = TurnManager()
    tm.on_stt(SttTranscript("hello the", is_final=False), 0)
    actions = tm.on_stt(SttUtteranceEnd(), 0)
    assert actions == [FinalizeSTT()]
    actions = tm.on_stt(SttTranscript("hello there", is_final=True, speech_final=False), 0)
    assert one(actions, StartLLM).history[-1].content == "hello there"


def test_noise_without_words_stops_without_turn() -> None:
    tm = TurnManager()
    tm.on_stt(SttSpeechStarted(), 0)
    actions = tm.on_stt(SttUtteranceEnd(), 0)
    assert [e.type for e in events(actions)] == [ProviderEventType.SPEECH_STOPPED]
    assert not tm.caller_speaking
    assert len(tm.history) == 0


def test_llm_text_streams_sentence_by_sentence_and_ttfa() -> None:
    tm = TurnManager()
    rid = one(caller_says(tm, "hours?", now=1.0), StartLLM).response_id
    assert tm.on_llm(rid, LLMTextDelta("We open at nine")) == []
    actions = tm.on_llm(rid, LLMTextDelta(". We close at five. Bye"))
    speaks = [a for a in actions if isinstance(a, SpeakSentence)]
    assert [s.text for s in speaks] == ["We open at nine.", "We close at five."]
    audio = tm.on_audio(rid, 0, ulaw_ms(100), 1.25)
    assert one(audio, RecordLatency).ttfa_ms == pytest.approx(250.0)
    assert events(audio, ProviderEventType.AUDIO_OUTPUT)[0].data["response_id"] == rid
    assert not [a for a in tm.on_audio(rid, 0, ulaw_ms(100), 2.0) if isinstance(a, RecordLatency)]
    tm.on_sentence_done(rid, 0)
    tm.on_input_audio(2000, 2.0)
    done_actions = tm.on_llm(rid, LLMDone(input_tokens=12, output_tokens=9))
    last = [a for a in done_actions if isinstance(a, SpeakSentence)][-1]
    assert last.text == "Bye"
    assert not events(done_actions, ProviderEventType.RESPONSE_DONE)
    finish = speak_all(
        tm, [a for a in done_actions if isinstance(a, SpeakSentence)] + [speaks[1]], 2.0
    )
    done = events(finish, ProviderEventType.RESPONSE_DONE)[0].data
    assert done["status"] == "completed"
    assert done["ttfa_ms"] == pytest.approx(250.0)
    usage: Usage = done["usage"]
    assert usage.input_text_tokens == 12
    assert usage.output_text_tokens == 9
    assert usage.input_audio_seconds == 2.0
    assert usage.tts_characters == len("We open at nine.We close at five.Bye")
    final_text = events(finish, ProviderEventType.TEXT_OUTPUT)[-1].data
    assert final_text["final"] is True
    assert final_text["text"] == "We open at nine. We close at five. Bye"
    assert tm.history.messages[-1] == ChatMessage(
        "assistant", "We open at nine. We close at five. Bye"
    )


def test_barge_in_cancels_and_keeps_only_heard_text() -> None:
    tm = TurnManager()
    rid = one(caller_says(tm, "tell me a story"), StartLLM).response_id
    speaks = [
        a
        for a in tm.on_llm(
            rid, LLMTextDelta("One two three four. Five six seven eight. Nine ten. ")
        )
        if isinstance(a, SpeakSentence)
    ]
    for s in speaks[:2]:
        tm.on_audio(rid, s.sentence_id, ulaw_ms(1000), 1.0)
    tm.on_sentence_done(rid, 0)
    actions = tm.on_stt(SttSpeechStarted(audio_ms=5000), 2.0)
    assert CancelLLM(rid) in actions
    assert CancelSpeech(rid) in actions
    assert events(actions, ProviderEventType.INTERRUPTED)[0].data == {"response_id": rid}
    done = events(actions, ProviderEventType.RESPONSE_DONE)[0].data
    assert done["status"] == "cancelled"
    # Before the bridge says how much was heard: the text whose audio was produced (the second
    # sentence was cut off after 1 s of an estimated 1.36 s: 3 of its 4 words).
    assert tm.history.messages[-1].content == "One two three four. Five six seven"
    assert tm.on_audio(rid, 2, ulaw_ms(100), 2.0) == []  # stale audio is dropped
    tm.interrupt(played_ms=1500)
    assert tm.history.messages[-1].content == "One two three four. Five six"


def test_interrupt_after_response_done_truncates_history() -> None:
    tm = TurnManager()
    rid = one(caller_says(tm, "hi"), StartLLM).response_id
    actions = tm.on_llm(rid, LLMTextDelta("Hello there. How can I help?"))
    actions += tm.on_llm(rid, LLMDone())
    speak_all(tm, actions, 1.0, ms=1000)
    assert tm.active_response_id is None
    assert tm.interrupt(played_ms=400) == []
    assert tm.history.messages[-1].content == "Hello"
    tm.interrupt(played_ms=0)
    assert tm.history.messages[-1].role == "user"  # nothing heard: the reply is dropped


def test_tool_loop_continues_after_result() -> None:
    tm = TurnManager()
    rid = one(caller_says(tm, "weather in Paris"), StartLLM).response_id
    call = LLMFunctionCall("c1", "get_weather", {"city": "Paris"})
    actions = tm.on_llm(rid, LLMTextDelta("Let me check."))
    actions += tm.on_llm(rid, call)
    fc = events(actions, ProviderEventType.FUNCTION_CALL)[0].data
    assert fc == {"call_id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}
    # The result arrives before the reply finished speaking: the loop waits for the audio.
    assert tm.on_function_result("c1", {"temp": 20}) == []
    actions += tm.on_llm(rid, LLMDone())
    finish = speak_all(tm, actions, 1.0)
    assert events(finish, ProviderEventType.RESPONSE_DONE)[0].data["status"] == "completed"
    start = one(finish, StartLLM)
    assert start.history[-2] == ChatMessage("assistant", "Let me check.", tool_calls=(call,))
    assert start.history[-1] == ChatMessage(
        "tool", '{"temp": 20}', tool_call_id="c1", name="get_weather"
    )
    unknown = tm.on_function_result("nope", 1)
    assert events(unknown, ProviderEventType.ERROR)[0].data["code"] == "unknown_call_id"


def test_result_after_response_done_starts_continuation() -> None:
    tm = TurnManager()
    rid = one(caller_says(tm, "book it"), StartLLM).response_id
    tm.on_llm(rid, LLMFunctionCall("c9", "book", {}))
    actions = tm.on_llm(rid, LLMDone())
    assert events(actions, ProviderEventType.RESPONSE_DONE)
    assert tm.busy
    assert tm.active_response_id is None
    start = one(tm.on_function_result("c9", "ok"), StartLLM)
    assert start.history[-1].content == "ok"


def test_new_caller_turn_answers_pending_calls_with_placeholder() -> None:
    tm = TurnManager()
    rid = one(caller_says(tm, "book it"), StartLLM).response_id
    tm.on_llm(rid, LLMFunctionCall("c9", "book", {}))
    tm.on_llm(rid, LLMDone())
    start = one(caller_says(tm, "actually never mind"), StartLLM)
    roles = [m.role for m in start.history]
    assert roles == ["user", "assistant", "tool", "user"]
    assert "interrupted" in start.history[2].content
    assert tm.on_function_result("c9", "late")[0].type is ProviderEventType.ERROR  # type: ignore[union-attr]  # first action is an EmitEvent


def test_say_queues_behind_active_response() -> None:
    tm = TurnManager()
    greeting = tm.say("Hello! Thanks for calling.", 0.0)
    assert [a.text for a in greeting if isinstance(a, SpeakSentence)] == [
        "Hello!",
        "Thanks for calling.",
    ]
    assert tm.say("Sorry for the wait.", 0.5) == []
    done = speak_all(tm, greeting, 1.0)
    assert events(done, ProviderEventType.RESPONSE_DONE)[0].data["ttfa_ms"] == pytest.approx(1000.0)
    assert [a.text for a in done if isinstance(a, SpeakSentence)] == ["Sorry for the wait."]
    assert tm.history.messages[0] == ChatMessage("assistant", "Hello! Thanks for calling.")


def test_llm_error_fails_response() -> None:
    tm = TurnManager()
    rid = one(caller_says(tm, "hi"), StartLLM).response_id
    actions = tm.on_llm_error(rid, "boom")
    assert events(actions, ProviderEventType.ERROR)[0].data["fatal"] is False
    assert events(actions, ProviderEventType.RESPONSE_DONE)[0].data["status"] == "failed"


def test_heard_text_proportions() -> None:
    sentences = [("a b c d.", 1000.0), ("e f.", 500.0)]
    assert heard_text(sentences, 2000) == "a b c d. e f."
    assert heard_text(sentences, 1000) == "a b c d."
    assert heard_text(sentences, 1250) == "a b c d. e"
    assert heard_text(sentences, 10) == "a"
    assert heard_text(sentences, 0) == ""


def test_history_bounded_by_turns_and_tokens() -> None:
    history = ConversationHistory(max_turns=2, max_tokens=1000)
    for i in range(4):
        history.append(ChatMessage("user", f"q{i}"))
        history.append(ChatMessage("assistant", "", tool_calls=(LLMFunctionCall(f"c{i}", "f"),)))
        history.append(ChatMessage("tool", "{}", tool_call_id=f"c{i}", name="f"))
        history.append(ChatMessage("assistant", f"a{i}"))
    assert [m.content for m in history.messages if m.role == "user"] == ["q2", "q3"]
    assert history.messages[0].role == "user"  # a tool call never loses its turn's start
    small = ConversationHistory(max_turns=50, max_tokens=30)
    for i in range(10):
        small.append(ChatMessage("user", "x" * 40 + str(i)))
    assert len(small) == 2
    assert small.messages[-1].content.endswith("9")


def test_late_interrupt_truncates_old_reply_but_spares_the_new_one() -> None:
    tm = TurnManager()
    rid = one(caller_says(tm, "story"), StartLLM).response_id
    speak = one(tm.on_llm(rid, LLMTextDelta("Alpha beta gamma delta. ")), SpeakSentence)
    tm.on_audio(rid, speak.sentence_id, ulaw_ms(1000), 1.0)
    tm.on_sentence_done(rid, 0)
    new = one(caller_says(tm, "stop"), StartLLM).response_id  # barge-in, then a new turn
    assert tm.interrupt(played_ms=500) == []  # arrives late: the new reply is still silent
    assert tm.active_response_id == new
    assert [m.content for m in tm.history.messages] == ["story", "Alpha beta", "stop"]


def test_a_note_goes_into_the_history_and_is_answered_only_when_asked() -> None:
    tm = TurnManager()
    assert tm.note("The caller is a VIP.", respond=False, now=1.0) == []
    assert tm.history.messages[-1] == ChatMessage(
        role="user", content="[Operator note, not said by the caller] The caller is a VIP."
    )
    start = one(tm.note("An operator spoke with the caller.", respond=True, now=2.0), StartLLM)
    assert "An operator spoke" in start.history[-1].content
    # while a response is under way it waits for the next turn instead
    assert tm.note("Later.", respond=True, now=3.0) == []
    assert tm.history.messages[-1].content.endswith("Later.")


def test_caller_text_is_a_turn_the_llm_answers_and_ends_a_reply_under_way() -> None:
    tm = TurnManager()
    first = one(caller_says(tm, "what are your hours", now=0.0), StartLLM)
    actions = tm.caller_text("caller pressed 4 2", now=5.0)
    assert any(isinstance(a, CancelLLM) for a in actions)  # the reply under way gives way
    start = one(actions, StartLLM)
    assert start.response_id != first.response_id
    assert start.history[-1] == ChatMessage(role="user", content="caller pressed 4 2")
    assert events(actions, ProviderEventType.CALLER_TRANSCRIPT) == []  # the bridge records it
    assert tm.caller_text("  ", now=6.0) == []
