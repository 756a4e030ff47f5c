"""The pure turn-taking engine of a segmented pipeline: events in, actions out, no I/O.

Theory of operation. :class:`TurnManager` sees the call through method calls — STT events, LLM
events of a given response, TTS audio of a given sentence, function results, ``interrupt`` and
``say`` — and answers each with a list of actions (:data:`TurnAction`) for the asyncio engine to
carry out: emit a provider event, start/cancel an LLM stream, speak/cancel a sentence, ask the STT
to finalize, record a turn's time to first audio. It never sees a clock: callers pass ``now``.

Caller side::

    idle ──SpeechStarted / first interim text──▶ speaking ──speech_final, or UtteranceEnd with
      ▲                                             │      final text, or the final that a
      └────────────── caller turn ended ◀───────────┘      requested Finalize produced

An ``UtteranceEnd`` with only interim text asks the STT to ``Finalize``; the final result that
follows ends the turn. Ending a caller turn appends the ``user`` message and starts a response.

Agent side: one *response* at a time (an LLM stream, or a ``say``; its state:
:mod:`.responses`). LLM text is cut into sentences (:class:`.sentences.SentenceSplitter`); each
goes to TTS at once (``SpeakSentence``) and to ``text.output``. A response finishes when the
LLM is done and every sentence has been spoken: its assistant message (text + tool calls) is
appended to the history and ``response.done`` is emitted. If it made function calls, the turn
continues with a new LLM response once every result is in (the tool loop). ``say`` requests
queue behind a busy agent.

Barge-in: caller speech while a response is active cancels the LLM stream and the TTS, emits
``interrupted`` and ``response.done`` (status ``cancelled``), and stores in the history only the
text whose audio had been produced (the sentence being synthesized is cut in proportion to its
audio so far over its estimated length). ``interrupt(played_ms)`` from the bridge then narrows
that to what the caller actually heard (see :func:`.sentences.heard_text`): whole sentences
that were fully played, plus the leading words of the sentence cut off, in proportion to the part
of it that played (sentence/word granularity: no word timings exist for synthesized audio).
Calls whose results had not arrived get a placeholder result so the history stays well formed
(the LLM APIs require every call to be answered); late results are ignored.

Turn-taking (:meth:`TurnManager.configure_turn_taking`, an agent's ``turn_taking``): the bridge
decides interruptions (``bridge/turn_taking.py``), so caller speech no longer cancels a reply
here; the bridge's ``interrupt`` does. A caller turn that ends while an audible reply plays
(being generated, or generated and still playing by the real-time estimate: a TTS faster than
real time finishes a long reply early) is dropped when it holds only backchannels ("mm-hmm")
or noise, else answered once the reply is done or cut (at once if it is only playing). And a
turn that sounds unfinished (``endpointing.py``: "my number is five five five") waits up to
``max_endpoint_ms`` of *caller audio* (``endpoint_wait.py``: timed on the audio fed to the STT,
not on the wall clock; ``WaitEndpoint`` → :meth:`TurnManager.endpoint_due`) for more speech
before it is answered; the STT's own end of utterance (Deepgram's ``UtteranceEnd``) does not
cut that wait short.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from switchboard.media import AudioChunk, Usage
from switchboard.providers.backchannels import BACKCHANNELS, content_words
from switchboard.providers.events import (
    AudioOutput,
    CallerTranscript,
    ErrorReport,
    FunctionCall,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ResponseInterrupted,
    SpeechStarted,
    SpeechStopped,
    TextOutput,
)
from switchboard.providers.pipeline.actions import (
    CancelLLM,
    CancelSpeech,
    EmitEvent,
    FinalizeSTT,
    RecordLatency,
    SpeakSentence,
    StartLLM,
    TurnAction,
)
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
    SttConnection,
    SttEvent,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)
from switchboard.providers.pipeline.endpoint_wait import EndpointWait
from switchboard.providers.pipeline.endpointing import utterance_complete
from switchboard.providers.pipeline.history import ConversationHistory
from switchboard.providers.pipeline.responses import DEFAULT_MS_PER_CHAR, Response, Sentence
from switchboard.providers.pipeline.sentences import heard_text, split_sentences

__all__ = [
    "CancelLLM",
    "CancelSpeech",
    "EmitEvent",
    "FinalizeSTT",
    "RecordLatency",
    "SpeakSentence",
    "StartLLM",
    "TurnAction",
    "TurnManager",
    "heard_text",
]

INTERRUPTED_RESULT: Mapping[str, str] = {"error": "cancelled: the caller interrupted"}


class TurnManager:
    """The pure turn-taking/barge-in/history/tool-loop state machine (see the module docstring).

    Args:
        max_history_turns: turns kept in the history (oldest dropped first).
        max_history_tokens: estimated token budget of the history.
        barge_in: whether caller speech interrupts the agent.
    """

    def __init__(
        self,
        *,
        max_history_turns: int = 20,
        max_history_tokens: int = 6000,
        barge_in: bool = True,
    ) -> None:
        self.history = ConversationHistory(
            max_turns=max_history_turns, max_tokens=max_history_tokens
        )
        self.barge_in = barge_in
        self._ids = 0
        # caller
        self._caller_item: str | None = None
        self._finals: list[str] = []
        self._interim = ""
        self._finalize_requested = False
        self._last_end_ms: int | None = None
        self._unbilled_input_ms = 0.0
        # agent
        self._active: Response | None = None
        self._last_audible: Response | None = None
        self._awaiting: Response | None = None  # finished response whose calls await results
        self._results: dict[str, Any] = {}
        self._says: list[tuple[str, float]] = []
        self._turn_t0: float | None = None
        self._ms_per_char = DEFAULT_MS_PER_CHAR  # speech rate of the TTS, learnt per call
        self._turn_latency_recorded = False
        # turn-taking (configure_turn_taking)
        self.bridge_interrupts = False
        self.punctuated = True
        self._backchannels = BACKCHANNELS["en"]
        self._wait = EndpointWait()  # an unfinished-sounding turn's wait, in caller audio
        self._open = 0  # utterances the STT reported started and not yet final
        self._deferred: str | None = None  # caller words said over a reply, answered after it
        # when the agent audio produced so far has played (monotonic s): a TTS faster than real
        # time finishes a long reply while most of it is still to play
        self._audible_until = 0.0

    def configure_turn_taking(
        self,
        *,
        max_endpoint_ms: float = 1200.0,
        backchannels: frozenset[str] = BACKCHANNELS["en"],
        punctuated: bool = True,
    ) -> None:
        """The bridge decides interruptions; unfinished turns wait (module docstring)."""
        self.bridge_interrupts = True
        self._wait.max_ms = max_endpoint_ms
        self._backchannels = backchannels
        self.punctuated = punctuated

    # -- queries ----------------------------------------------------------------------------------
    @property
    def active_response_id(self) -> str | None:
        return self._active.id if self._active else None

    @property
    def caller_speaking(self) -> bool:
        return self._caller_item is not None

    @property
    def busy(self) -> bool:
        """Whether a response is active or a tool result is awaited."""
        return self._active is not None or self._awaiting is not None

    def is_current(self, response_id: str) -> bool:
        return self._active is not None and self._active.id == response_id

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self._ids}"

    # -- caller side ------------------------------------------------------------------------------
    def on_input_audio(self, ms: float, now: float) -> list[TurnAction]:
        """Account ``ms`` of caller audio sent to the STT (billed in the next response.done);
        it advances the clock a held turn's wait runs on (``endpoint_wait.py``)."""
        self._unbilled_input_ms += ms
        due = self._wait.on_audio(ms, now)
        return [] if due is None else [due]

    def on_stt(self, event: SttEvent, now: float) -> list[TurnAction]:
        """Feed one STT event."""
        match event:
            case SttSpeechStarted(audio_ms=audio_ms):
                return self._speech_started(audio_ms)
            case SttTranscript():
                return self._transcript(event, now)
            case SttUtteranceEnd():
                return self._utterance_end(now)
            case SttConnection(up=True, attempt=attempt):
                return [EmitEvent(Reconnected(attempt))]
            case SttConnection(attempt=attempt, reason=reason):
                return [EmitEvent(Reconnecting(attempt, reason))]

    def _speech_started(self, audio_ms: int | None) -> list[TurnAction]:
        actions: list[TurnAction] = []
        if self._caller_item is None:
            self._caller_item = self._new_id("item")
            actions.append(EmitEvent(SpeechStarted(audio_ms, self._caller_item)))
        self._open += 1
        self._wait.speech_started()
        if self.barge_in and not self.bridge_interrupts and self._active is not None:
            actions += self._cancel_active("interrupted")
        return actions

    def _transcript(self, event: SttTranscript, now: float) -> list[TurnAction]:
        text = event.text.strip()
        actions: list[TurnAction] = []
        if text and self._caller_item is None:
            actions += self._speech_started(event.start_ms)
        if event.end_ms is not None:
            self._last_end_ms = event.end_ms
        if event.is_final:
            if event.speech_final or self._finalize_requested:
                self._open = max(0, self._open - 1)
            if text:
                self._finals.append(text)
            self._interim = ""
            if (event.speech_final or self._finalize_requested) and self._finals:
                wait = self._endpoint_wait(event.end_ms, now)
                if wait is not None:
                    return actions + wait
                return actions + self._end_caller_turn(now)
        else:
            self._interim = text
        so_far = " ".join([*self._finals, self._interim]).strip()
        if so_far and self._caller_item is not None:
            actions.append(
                EmitEvent(CallerTranscript(so_far, final=False, item_id=self._caller_item))
            )
        return actions

    def _endpoint_wait(self, end_ms: int | None, now: float) -> list[TurnAction] | None:
        """Hold a turn that sounds unfinished (its speech ended at ``end_ms``; at most
        ``max_endpoint_ms`` of caller audio in all); ``None``: answer it now."""
        if self._wait.max_ms <= 0 or utterance_complete(
            " ".join(self._finals), punctuated=self.punctuated
        ):
            return None
        backstop = self._wait.hold(end_ms, now)
        if backstop is not None:
            return [backstop]
        # the pause ran its length (a late result), but if the caller is speaking again now,
        # the end of that speech decides (else half a sentence is answered)
        return [] if self._open else None

    def endpoint_due(self, now: float) -> list[TurnAction]:
        """A ``WaitEndpoint`` fell due: answer the held turn unless the caller went on."""
        wait = self._wait
        if not wait.holding or wait.went_on or self._open or not self._finals:
            return []  # the caller went on: the end of that speech decides
        if not wait.due(now):
            return []
        return self._end_caller_turn(now)

    def _utterance_end(self, now: float) -> list[TurnAction]:
        self._open = max(0, self._open - 1)  # an utterance ended (perhaps without words)
        if self._finals:
            if self._wait.holding and not self._wait.over:
                # an unfinished-sounding turn waits its max_endpoint_ms (Deepgram's
                # UtteranceEnd, 1 s after the last word, answered "four five" mid-number)
                return []
            return self._end_caller_turn(now)
        if self._interim:
            self._finalize_requested = True
            return [FinalizeSTT()]
        if self._caller_item is not None:  # noise: speech started but no words came
            item, self._caller_item = self._caller_item, None
            return [EmitEvent(SpeechStopped(self._last_end_ms, item))]
        return []

    def _end_caller_turn(self, now: float) -> list[TurnAction]:
        text = " ".join(self._finals)
        item = self._caller_item or self._new_id("item")
        self._finals, self._interim, self._finalize_requested = [], "", False
        self._caller_item = None
        self._wait.clear()
        actions: list[TurnAction] = [
            EmitEvent(SpeechStopped(self._last_end_ms, item)),
            EmitEvent(CallerTranscript(text, final=True, item_id=item)),
        ]
        active = self._active
        generating = active is not None and active.audio_ms > 0
        if self.bridge_interrupts and (generating or now < self._audible_until):
            # said over a reply the bridge did not cut: a backchannel is not answered, other
            # words are, once the reply is done or the bridge cuts it (``_finish``), or at once
            # when it is only playing (generated: its audio plays before the answer's)
            if content_words(text, self._backchannels) == 0:
                return actions
            if generating:
                self._deferred = f"{self._deferred} {text}" if self._deferred else text
                return actions
        if self._active is not None:
            actions += self._cancel_active("interrupted")
        if self._awaiting is not None:
            self._answer_calls(self._awaiting, placeholder=True)
        self.history.append(ChatMessage(role="user", content=text))
        self._turn_t0, self._turn_latency_recorded = now, False
        return actions + self._start_llm()

    def caller_text(self, text: str, now: float) -> list[TurnAction]:
        """A caller turn given as text (keypad digits): it ends any reply under way and the
        LLM answers it, as a spoken turn would be (the bridge records its transcript)."""
        if not text.strip():
            return []
        actions: list[TurnAction] = []
        if self._active is not None:
            actions += self._cancel_active("interrupted")
        if self._awaiting is not None:
            self._answer_calls(self._awaiting, placeholder=True)
        self.history.append(ChatMessage(role="user", content=text))
        self._turn_t0, self._turn_latency_recorded = now, False
        return actions + self._start_llm()

    # -- agent side -------------------------------------------------------------------------------
    def _start_llm(self) -> list[TurnAction]:
        response = Response(self._new_id("resp"), self._new_id("item"), self._turn_t0, True)
        self._active = response
        return [StartLLM(response.id, tuple(self.history.messages))]

    def say(self, text: str, now: float) -> list[TurnAction]:
        """Speak ``text`` as the agent now, or after the current response/tool loop."""
        if not text.strip():
            return []
        if self.busy:
            self._says.append((text, now))
            return []
        response = Response(self._new_id("resp"), self._new_id("item"), now, False, llm_done=True)
        self._active = response
        actions: list[TurnAction] = []
        for sentence in split_sentences(text):
            actions += self._queue_sentence(response, sentence)
        return actions + self._maybe_finish(response)

    def note(self, text: str, *, respond: bool, now: float) -> list[TurnAction]:
        """Add an operator's note to the history (the history has no system role after the
        prompt, so it is a user message marked as not said by the caller); with ``respond``
        the LLM answers it now, unless a response is under way (it then reads it next turn)."""
        if not text.strip():
            return []
        self.history.append(
            ChatMessage(role="user", content=f"[Operator note, not said by the caller] {text}")
        )
        if not respond or self.busy:
            return []
        self._turn_t0, self._turn_latency_recorded = now, False
        return self._start_llm()

    def on_llm(self, response_id: str, event: LLMEvent) -> list[TurnAction]:
        """Feed one event of the LLM stream started for ``response_id`` (stale ones are ignored)."""
        response = self._active
        if response is None or response.id != response_id or response.llm_done:
            return []
        actions: list[TurnAction] = []
        match event:
            case LLMTextDelta(text=delta):
                for sentence in response.splitter.push(delta):
                    actions += self._queue_sentence(response, sentence)
            case LLMFunctionCall(call_id=call_id, name=name, arguments=arguments):
                response.calls.append(event)
                actions.append(EmitEvent(FunctionCall(call_id, name, dict(arguments))))
            case LLMDone():
                response.input_tokens += event.input_tokens
                response.output_tokens += event.output_tokens
                response.llm_done = True
                if event.finish_reason not in (None, "STOP", "stop", "MAX_TOKENS"):
                    response.reason = event.finish_reason
                for sentence in response.splitter.flush():
                    actions += self._queue_sentence(response, sentence)
                actions += self._maybe_finish(response)
        return actions

    def on_llm_error(self, response_id: str, message: str) -> list[TurnAction]:
        """The LLM stream of ``response_id`` failed: say what was generated, then fail it."""
        response = self._active
        if response is None or response.id != response_id:
            return []
        response.status, response.reason, response.llm_done = "failed", "llm_error", True
        response.calls.clear()  # calls of a broken stream are not trusted
        actions: list[TurnAction] = [EmitEvent(ErrorReport("llm_error", message, fatal=False))]
        return actions + self._maybe_finish(response)

    def _queue_sentence(self, response: Response, text: str) -> list[TurnAction]:
        sentence_id = len(response.sentences)
        response.sentences.append(Sentence(text))
        return [
            EmitEvent(
                TextOutput(text, final=False, response_id=response.id, item_id=response.item_id)
            ),
            SpeakSentence(response.id, sentence_id, text),
        ]

    def on_audio(
        self, response_id: str, sentence_id: int, chunk: AudioChunk, now: float
    ) -> list[TurnAction]:
        """TTS produced ``chunk`` for a sentence; returns [] for a stale response (drop it)."""
        response = self._active
        if response is None or response.id != response_id:
            return []
        response.sentences[sentence_id].audio_ms += chunk.duration_ms
        self._last_audible = response
        self._audible_until = max(self._audible_until, now) + chunk.duration_ms / 1000.0
        actions: list[TurnAction] = []
        if response.ttfa_ms is None and response.t0 is not None:
            response.ttfa_ms = max(0.0, (now - response.t0) * 1000.0)
        if response.from_caller and not self._turn_latency_recorded and self._turn_t0 is not None:
            self._turn_latency_recorded = True
            actions.append(RecordLatency(max(0.0, (now - self._turn_t0) * 1000.0)))
        actions.append(
            EmitEvent(AudioOutput(chunk, response_id=response.id, item_id=response.item_id))
        )
        return actions

    def on_sentence_done(
        self, response_id: str, sentence_id: int, error: str | None = None
    ) -> list[TurnAction]:
        """TTS finished a sentence (``error`` set when synthesis failed; the reply goes on)."""
        response = self._active
        if response is None or response.id != response_id:
            return []
        sentence = response.sentences[sentence_id]
        sentence.done = True
        if error is None and sentence.audio_ms > 0 and sentence.text:
            rate = sentence.audio_ms / len(sentence.text)
            self._ms_per_char = 0.7 * self._ms_per_char + 0.3 * rate
        actions: list[TurnAction] = []
        if error is not None:
            actions.append(EmitEvent(ErrorReport("tts_error", error, fatal=False)))
        return actions + self._maybe_finish(response)

    def _maybe_finish(self, response: Response) -> list[TurnAction]:
        if not response.llm_done or not all(s.done for s in response.sentences):
            return []
        return self._finish(response)

    def _finish(self, response: Response) -> list[TurnAction]:
        self._active = None
        text = response.spoken_text
        if text or response.calls:
            response.message = ChatMessage(
                role="assistant", content=text, tool_calls=tuple(response.calls)
            )
            self.history.append(response.message)
        usage = Usage(
            input_text_tokens=response.input_tokens,
            output_text_tokens=response.output_tokens,
            input_audio_seconds=round(self._unbilled_input_ms / 1000.0, 3),
            output_audio_seconds=round(response.audio_ms / 1000.0, 3),
            tts_characters=sum(len(s.text) for s in response.sentences),
        )
        self._unbilled_input_ms = 0.0
        actions: list[TurnAction] = []
        if text:
            actions.append(
                EmitEvent(
                    TextOutput(text, final=True, response_id=response.id, item_id=response.item_id)
                )
            )
        actions.append(
            EmitEvent(
                ResponseDone(
                    response.id, response.status, response.reason, usage, ttfa_ms=response.ttfa_ms
                )
            )
        )
        if response.calls and response.status == "completed":
            self._awaiting = response
            actions += self._continue_if_answered()
        elif response.calls:
            self._answer_calls(response, placeholder=True)
        if self._deferred is not None and not self.busy:
            text, self._deferred = self._deferred, None
            self.history.append(ChatMessage(role="user", content=text))
            self._turn_t0, self._turn_latency_recorded = None, True
            actions += self._start_llm()
        if not self.busy and self._says:
            actions += self.say(*self._says.pop(0))
        return actions

    def _cancel_active(self, reason: str) -> list[TurnAction]:
        response = self._active
        assert response is not None
        actions: list[TurnAction] = []
        if not response.llm_done:
            actions.append(CancelLLM(response.id))
        actions += [
            CancelSpeech(response.id),
            EmitEvent(ResponseInterrupted(response.id)),
        ]
        response.keep_produced(self._ms_per_char)  # what the caller may have heard
        response.llm_done = True
        response.status, response.reason = "cancelled", reason
        return actions + self._finish(response)

    # -- tool loop --------------------------------------------------------------------------------
    def on_function_result(self, call_id: str, result: Any) -> list[TurnAction]:
        """The bridge's result for ``call_id``; continues the turn once every call is answered."""
        known = {c.call_id for r in (self._active, self._awaiting) if r for c in r.calls}
        if call_id not in known:
            return [
                EmitEvent(
                    ErrorReport("unknown_call_id", f"no pending call {call_id!r}", fatal=False)
                )
            ]
        self._results[call_id] = result
        return self._continue_if_answered()

    def _continue_if_answered(self) -> list[TurnAction]:
        response = self._awaiting
        if response is None or any(c.call_id not in self._results for c in response.calls):
            return []
        self._answer_calls(response, placeholder=False)
        return self._start_llm()

    def _answer_calls(self, response: Response, *, placeholder: bool) -> None:
        for call in response.calls:
            result = self._results.pop(call.call_id, INTERRUPTED_RESULT if placeholder else None)
            content = result if isinstance(result, str) else json.dumps(result, default=str)
            self.history.append(
                ChatMessage(role="tool", content=content, tool_call_id=call.call_id, name=call.name)
            )
        if self._awaiting is response:
            self._awaiting = None

    # -- interruption from the bridge -------------------------------------------------------------
    def interrupt(self, played_ms: int | None) -> list[TurnAction]:
        """The bridge stopped the agent; ``played_ms`` of the latest audible reply were heard.

        A response that has produced no audio yet is left running: the caller cannot be
        interrupting it (typically it answers the very speech that caused the barge-in).
        """
        actions: list[TurnAction] = []
        self._audible_until = 0.0  # the caller's buffer was cleared
        if self._active is not None and self._active.audio_ms > 0:
            actions += self._cancel_active("interrupted")
        response = self._last_audible
        if played_ms is not None and response is not None and response.message is not None:
            heard = heard_text([(s.text, s.audio_ms) for s in response.sentences], played_ms)
            if heard != response.message.content:
                response.message = self.history.replace_content(response.message, heard)
        return actions
