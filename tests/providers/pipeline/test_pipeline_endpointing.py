"""End of turn for the pipeline (#21): the transcript judgement and the turn manager's wait
for an unfinished-sounding turn, and backchannels said over a reply (pure)."""

from __future__ import annotations

from tests.providers.pipeline.test_pipeline_turns import events, speak_all, ulaw_ms

from switchboard.providers.base import ProviderEventType
from switchboard.providers.pipeline.actions import StartLLM, WaitEndpoint
from switchboard.providers.pipeline.components import (
    LLMDone,
    LLMTextDelta,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)
from switchboard.providers.pipeline.endpointing import utterance_complete
from switchboard.providers.pipeline.turns import SpeakSentence, TurnAction, TurnManager


def test_unfinished_turns_are_recognised() -> None:
    for unfinished in (
        "My number is 555",
        "My number is five five five,",
        "I would like to book a table for",
        "I want to change my address and",
        "Um",
        "I need help with my",
    ):
        assert not utterance_complete(unfinished), unfinished
    for finished in ("What are your opening hours?", "Thanks, goodbye.", "My number is 555?"):
        assert utterance_complete(finished), finished
    assert not utterance_complete("what are your opening hours")  # a punctuating recogniser
    assert utterance_complete("what are your opening hours", punctuated=False)


def final(tm: TurnManager, text: str, now: float) -> list[TurnAction]:
    out = tm.on_stt(SttSpeechStarted(audio_ms=100), now)
    return out + tm.on_stt(SttTranscript(text, is_final=True, speech_final=True), now)


def test_an_unfinished_turn_waits_then_continues_or_times_out() -> None:
    tm = TurnManager()
    tm.configure_turn_taking(max_endpoint_ms=1200)
    out = final(tm, "My number is 555", 10.0)
    assert [a for a in out if isinstance(a, WaitEndpoint)] == [WaitEndpoint(11.2)]
    assert not [a for a in out if isinstance(a, StartLLM)]
    out = final(tm, "1234, thank you.", 10.9)  # the caller went on: one turn, answered at once
    (start,) = [a for a in out if isinstance(a, StartLLM)]
    assert start.history[-1].content == "My number is 555 1234, thank you."
    assert tm.endpoint_due(11.2) == []  # the old deadline does nothing
    out = final(tm, "I would like to book a table for", 20.0)
    assert tm.endpoint_due(20.5) == []
    out = tm.endpoint_due(21.2)  # nobody went on: answered after max_endpoint_ms
    assert [a for a in out if isinstance(a, StartLLM)]


def test_a_backchannel_over_a_reply_is_neither_interrupting_nor_answered() -> None:
    tm = TurnManager()
    tm.configure_turn_taking()
    out = final(tm, "Tell me about your hours?", 0.0)
    (start,) = [a for a in out if isinstance(a, StartLLM)]
    out = tm.on_llm(start.response_id, LLMTextDelta("We open at nine. We close at five. "))
    speak = [a for a in out if isinstance(a, SpeakSentence)]
    tm.on_audio(speak[0].response_id, 0, ulaw_ms(400), 1.0)  # the reply is audible
    out = final(tm, "Mm-hmm.", 1.5)
    assert not events(out, ProviderEventType.INTERRUPTED)
    assert not [a for a in out if isinstance(a, StartLLM)]
    assert events(out, ProviderEventType.CALLER_TRANSCRIPT)  # the bridge still hears it
    out = final(tm, "What about Sunday?", 2.0)  # words: answered once the reply is done
    assert not [a for a in out if isinstance(a, StartLLM)]
    tm.on_sentence_done(speak[0].response_id, 0)
    out = speak_all(tm, speak[1:], 2.5) + tm.on_llm(start.response_id, LLMDone())
    (nxt,) = [a for a in out if isinstance(a, StartLLM)]
    assert [m.content for m in nxt.history if m.role == "user"] == [
        "Tell me about your hours?",
        "What about Sunday?",
    ]


def test_an_utterance_end_does_not_cut_the_wait_of_an_unfinished_turn() -> None:
    """Deepgram sends UtteranceEnd ``utterance_end_ms`` (1 s) after the last word, 700 ms after
    the final result: it answered "my order number is four five" although the turn was to
    wait 1.2 s, and the caller's "seven two nine" began just then."""
    tm = TurnManager()
    tm.configure_turn_taking(max_endpoint_ms=1200)
    out = final(tm, "My order number is four five.", 10.0)
    assert [a for a in out if isinstance(a, WaitEndpoint)] == [WaitEndpoint(11.2)]
    assert tm.on_stt(SttUtteranceEnd(last_word_end_ms=4660), 10.7) == []
    out = final(tm, "Seven two nine.", 11.6)  # the caller went on
    (start,) = [a for a in out if isinstance(a, StartLLM)]
    assert start.history[-1].content == "My order number is four five. Seven two nine."
    # nobody goes on: the wait's deadline answers, and an UtteranceEnd after it too
    out = final(tm, "Call me at five five five.", 20.0)
    assert tm.on_stt(SttUtteranceEnd(), 20.7) == []
    assert [a for a in tm.endpoint_due(21.2) if isinstance(a, StartLLM)]
    out = final(tm, "It is for the", 30.0)
    assert [a for a in tm.on_stt(SttUtteranceEnd(), 31.3) if isinstance(a, StartLLM)]


def generate(tm: TurnManager, start: StartLLM, text: str, now: float, ms: int) -> None:
    """The LLM says ``text`` and the TTS makes ``ms`` of audio per sentence, all at ``now``."""
    out = tm.on_llm(start.response_id, LLMTextDelta(text))
    out += tm.on_llm(start.response_id, LLMDone())
    assert speak_all(tm, out, now, ms=ms)
    assert tm.active_response_id is None  # generated: only playing now


def answered(actions: list[TurnAction]) -> StartLLM | None:
    starts = [a for a in actions if isinstance(a, StartLLM)]
    return starts[0] if starts else None


def test_a_backchannel_over_a_reply_that_is_generated_but_still_playing_is_not_answered() -> None:
    """A TTS faster than real time (Piper) finishes a long reply while most of it is still to
    play: a backchannel said over the rest is not answered either (the local provider answered
    each one after the reply's generation had ended); words are, at once (their answer plays
    after the reply); after the reply has played or was cut, a backchannel is a turn."""
    tm = TurnManager()
    tm.configure_turn_taking()
    start = answered(final(tm, "Tell me about your hours?", 0.0))
    assert start is not None
    generate(tm, start, "We open at nine. We close at five. ", 1.0, 10_000)  # plays to 21 s
    out = final(tm, "Mm-hmm.", 5.0)
    assert answered(out) is None
    assert events(out, ProviderEventType.CALLER_TRANSCRIPT)  # the bridge still hears it
    nxt = answered(final(tm, "What about Sunday?", 8.0))
    assert nxt is not None
    assert [m.content for m in nxt.history if m.role == "user"] == [
        "Tell me about your hours?",
        "What about Sunday?",
    ]
    generate(tm, nxt, "Closed. ", 9.0, 1000)  # queued after the first: plays to 22 s
    assert answered(final(tm, "Okay.", 21.5)) is None
    last = answered(final(tm, "Okay.", 22.5))
    assert last is not None
    generate(tm, last, "Good. ", 23.0, 10_000)
    tm.interrupt(2000)  # the bridge cut it: the caller's buffer is empty
    assert answered(final(tm, "Yeah.", 26.0)) is not None


def test_speech_that_resumed_before_the_fragment_was_transcribed_keeps_the_turn_open() -> None:
    tm = TurnManager()
    tm.configure_turn_taking(max_endpoint_ms=1200)
    tm.on_stt(SttSpeechStarted(audio_ms=0), 0.0)
    tm.on_stt(SttSpeechStarted(audio_ms=900), 0.8)  # the caller went on before the final came
    out = tm.on_stt(SttTranscript("My order number is 45.", is_final=True, speech_final=True), 0.9)
    assert [a for a in out if isinstance(a, WaitEndpoint)]
    assert tm.endpoint_due(2.1) == []  # still speaking: not answered half-way
    out = tm.on_stt(SttTranscript("729, thanks.", is_final=True, speech_final=True), 2.6)
    (start,) = [a for a in out if isinstance(a, StartLLM)]
    assert start.history[-1].content == "My order number is 45. 729, thanks."
