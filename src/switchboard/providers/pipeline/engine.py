"""The asyncio engine running a segmented STT → LLM → TTS pipeline as one provider session.

Theory of operation: :class:`PipelineProvider` owns three long-lived tasks and no decisions.

* the *STT reader* feeds every recognition event to the pure :class:`TurnManager`;
* the *LLM task* (one at a time, per response) streams the model and feeds its events back;
* the *speech worker* takes sentences from a queue in order and synthesizes each in a sub-task,
  feeding audio chunks back (the turn manager decides whether they are still wanted).

Whatever the turn manager answers (emit an event, start/cancel the LLM, speak/cancel sentences,
finalize the STT, record a latency) is carried out by :meth:`PipelineProvider._apply`. Cancelling
means cancelling the LLM task and the current synthesis sub-task; queued sentences of a cancelled
response are skipped when dequeued. Time to first audio is measured per caller turn from the end
of the caller's turn to the first TTS chunk, kept in :attr:`PipelineProvider.ttfa_ms` and given
in each ``response.done`` as ``ttfa_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

from switchboard.audio.convert import StreamConverter
from switchboard.errors import ConfigError, ProviderError
from switchboard.providers.backchannels import BACKCHANNELS
from switchboard.providers.base import (
    AudioChunk,
    AudioFormat,
    AudioSpec,
    BaseProvider,
    ProviderCapabilities,
    SessionConfig,
    SessionState,
)
from switchboard.providers.events import ErrorReport, ProviderEvent
from switchboard.providers.pipeline.actions import WaitEndpoint
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    PartsBuilder,
    PipelineParts,
    SpeechToText,
    TextLLM,
    TextToSpeech,
)
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
)

__all__ = ["PipelineProvider"]

logger = logging.getLogger(__name__)

#: Event-loop turns a held turn's judgement waits for STT results already under way.
_CATCH_UP_TURNS = 20


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()


class PipelineProvider(BaseProvider):
    """A :class:`SegmentedVoiceProvider` made of a SpeechToText, a TextLLM and a TextToSpeech.

    The parts are either given (``stt``, ``llm``, ``tts``: kept whatever the configuration) or
    built by ``parts`` for each configuration, so that ``connect(config)`` gets STT and TTS in
    that configuration's audio formats, model and voice.

    Args:
        config: the session configuration (system prompt, tools, temperature, greeting), or
            ``None`` to give it to :meth:`connect` instead.
        stt: speech recognition; its ``input_spec`` is this provider's ``input_spec``.
        llm: the chat model.
        tts: speech synthesis; its ``output_spec`` is this provider's ``output_spec``.
        parts: builds the three parts for a configuration (instead of ``stt``/``llm``/``tts``).
        max_history_turns: conversation turns kept for the LLM.
        max_history_tokens: estimated token budget of the history.
        barge_in: whether caller speech interrupts the agent.
        greeting: speak ``config.greeting`` when connected.
    """

    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities(
        realtime=False,
        function_calling=True,
        interruption=True,
        transcription=True,
        audio_formats=(AudioFormat.ULAW, AudioFormat.PCM16),
        input_sample_rates=(8000, 16000),
        output_sample_rates=(8000, 16000, 24000),
        typical_latency_ms=900,
    )

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        stt: SpeechToText | None = None,
        llm: TextLLM | None = None,
        tts: TextToSpeech | None = None,
        parts: PartsBuilder | None = None,
        max_history_turns: int = 20,
        max_history_tokens: int = 6000,
        barge_in: bool = True,
        greeting: bool = True,
    ) -> None:
        super().__init__()
        given = (stt, llm, tts)
        self._parts: PipelineParts | None = None
        if stt is not None and llm is not None and tts is not None and parts is None:
            self._parts = PipelineParts(stt, llm, tts)
        elif parts is None or any(p is not None for p in given):
            raise ConfigError("PipelineProvider needs either stt, llm and tts, or parts")
        self._build = parts
        self._replaced: list[PipelineParts] = []  # built for an earlier config, never started
        self.turns = TurnManager(
            max_history_turns=max_history_turns,
            max_history_tokens=max_history_tokens,
            barge_in=barge_in,
        )
        self._greeting = greeting
        #: Time to first audio of each caller turn, in milliseconds, oldest first.
        self.ttfa_ms: list[float] = []
        self._speech_queue: asyncio.Queue[SpeakSentence] = asyncio.Queue()
        self._stt_task: asyncio.Task[None] | None = None
        self._speech_task: asyncio.Task[None] | None = None
        self._llm_task: asyncio.Task[None] | None = None
        self._llm_response: str | None = None
        self._synth_task: asyncio.Task[None] | None = None
        self._synth_response: str | None = None
        self._converter: StreamConverter | None = None
        self._endpoint_tasks: set[asyncio.Future[None]] = set()
        self._endpoint_timers: list[asyncio.TimerHandle] = []
        if config is not None:
            self._set_config(config)

    def _adopt_config(self, config: SessionConfig) -> SessionConfig:
        tt = config.extra.get("turn_taking")
        if tt is not None:  # the bridge decides interruptions; unfinished turns wait
            language = (config.language or "en").split("-")[0].lower()
            words = BACKCHANNELS.get(language, BACKCHANNELS["en"])
            self.turns.configure_turn_taking(
                max_endpoint_ms=float(tt.get("max_endpoint_ms", 1200)),
                backchannels=words | {str(p).lower() for p in tt.get("backchannels", ())},
            )
        if self._build is not None:
            if self._parts is not None:
                self._replaced.append(self._parts)
            self._parts = self._build(config)
        return config

    @property
    def parts(self) -> PipelineParts:
        """This session's STT, LLM and TTS (``ConfigError`` while built parts await a config)."""
        if self._parts is None:
            raise ConfigError(
                f"{type(self).__name__} has no SessionConfig yet: pass one to "
                "create_provider(type, config) or to connect(config)"
            )
        return self._parts

    @property
    def stt(self) -> SpeechToText:
        """Speech recognition (see :attr:`parts`)."""
        return self.parts.stt

    @property
    def llm(self) -> TextLLM:
        """The chat model (see :attr:`parts`)."""
        return self.parts.llm

    @property
    def tts(self) -> TextToSpeech:
        """Speech synthesis (see :attr:`parts`)."""
        return self.parts.tts

    @property
    def input_spec(self) -> AudioSpec:
        return self.stt.input_spec

    @property
    def output_spec(self) -> AudioSpec:
        return self.tts.output_spec

    # -- lifecycle --------------------------------------------------------------------------------
    async def _do_connect(self) -> None:
        while self._replaced:  # their HTTP clients were never used, but are still open
            old = self._replaced.pop()
            await self._close_parts(old.stt.close, old.llm.aclose, old.tts.aclose)
        try:
            await self.stt.start()
        except Exception as exc:
            await self._teardown()  # close the LLM and TTS clients too
            if isinstance(exc, ProviderError):
                raise
            raise ProviderError(f"speech recognition did not start: {exc}") from exc
        self._stt_task = asyncio.create_task(self._stt_loop(), name="pipeline-stt")
        self._speech_task = asyncio.create_task(self._speech_loop(), name="pipeline-tts")
        for turn in self.config.history:  # a conversation carried over from another provider
            message = (
                ChatMessage(role="assistant", content=turn.text)
                if turn.role == "assistant"
                else ChatMessage(role="user", content=turn.text)
            )
            self.turns.history.append(message)
        if self._greeting and self.config.greeting:
            await self.say(self.config.greeting)

    async def _do_disconnect(self) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        for timer in self._endpoint_timers:  # a held turn's judgement (the backstop is 11 s)
            timer.cancel()
        current = asyncio.current_task()
        tasks = [self._llm_task, self._synth_task, self._speech_task]
        for task in tasks:
            if task is not None and task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.stt.close()
        if self._stt_task is not None and self._stt_task is not current:
            self._stt_task.cancel()
            tasks.append(self._stt_task)
        waiting = [t for t in tasks if t is not None and t is not current]
        if waiting:
            await asyncio.wait(waiting, timeout=5)
        await self._close_parts(self.llm.aclose, self.tts.aclose)

    @staticmethod
    async def _close_parts(*closers: Callable[[], Awaitable[None]]) -> None:
        for closer in closers:
            try:
                await closer()
            except Exception:
                logger.warning("pipeline: error closing a component", exc_info=True)

    async def _fail(self, code: str, message: str) -> None:
        await self.emit(ProviderEvent(ErrorReport(code, message, fatal=True)))
        if self.state in (SessionState.CONNECTED, SessionState.RECONNECTING):
            self._transition(SessionState.FAILED)
            await self._teardown()

    # -- public operations ------------------------------------------------------------------------
    async def say(self, text: str) -> None:
        """Speak ``text`` as the agent (after the current reply, if one is under way)."""
        self._require(
            SessionState.CONNECTING,
            SessionState.CONNECTED,
            SessionState.RECONNECTING,
            action="say",
        )
        await self._apply(self.turns.say(text, time.monotonic()))

    async def add_note(self, text: str, *, respond: bool = False) -> None:
        """A note in the history the caller does not hear; answered now when ``respond``."""
        self._require(
            SessionState.CONNECTING,
            SessionState.CONNECTED,
            SessionState.RECONNECTING,
            action="add a note",
        )
        await self._apply(self.turns.note(text, respond=respond, now=time.monotonic()))

    async def send_caller_text(self, text: str) -> None:
        """A caller turn given as text (keypad digits), answered like a spoken one."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="send text")
        await self._apply(self.turns.caller_text(text, time.monotonic()))

    async def _do_send_audio(self, chunk: AudioChunk) -> None:
        data = chunk.data
        if chunk.spec != self.input_spec:
            if self._converter is None or self._converter.source != chunk.spec:
                self._converter = StreamConverter(chunk.spec, self.input_spec)
            data = self._converter.process(data)
        if not data:
            return
        ms = self.input_spec.duration_ms(len(data))
        actions = self.turns.on_input_audio(ms, time.monotonic())  # the caller-audio clock
        await self.stt.send_audio(data)
        if actions:
            await self._apply(actions)

    async def _do_function_result(self, call_id: str, result: Any) -> None:
        await self._apply(self.turns.on_function_result(call_id, result))

    async def _do_interrupt(self, played_ms: int | None) -> None:
        await self._apply(self.turns.interrupt(played_ms))

    # -- actions ----------------------------------------------------------------------------------
    async def _apply(self, actions: list[TurnAction]) -> None:
        for action in actions:
            match action:
                case EmitEvent(data=data):
                    await self.emit(ProviderEvent(data))
                case StartLLM():
                    logger.debug("pipeline: LLM started for %s", action.response_id)
                    self._llm_response = action.response_id
                    self._llm_task = asyncio.create_task(
                        self._run_llm(action), name=f"pipeline-llm-{action.response_id}"
                    )
                case CancelLLM(response_id=response_id):
                    task = self._llm_task
                    if (
                        task is not None
                        and self._llm_response == response_id
                        and task is not asyncio.current_task()
                    ):
                        task.cancel()
                case SpeakSentence():
                    logger.debug("pipeline: sentence %d queued", action.sentence_id)
                    self._speech_queue.put_nowait(action)
                case CancelSpeech(response_id=response_id):
                    task = self._synth_task
                    if (
                        task is not None
                        and self._synth_response == response_id
                        and task is not asyncio.current_task()
                    ):
                        task.cancel()
                case FinalizeSTT():
                    try:
                        await self.stt.finalize()
                    except Exception as exc:
                        logger.warning("pipeline: STT finalize failed: %s", exc)
                case WaitEndpoint(at=at):
                    loop = asyncio.get_running_loop()
                    delay = max(0.0, at - time.monotonic())
                    pending = [t for t in self._endpoint_timers if t.when() > loop.time()]
                    self._endpoint_timers = [*pending, loop.call_later(delay, self._endpoint_due)]
                case RecordLatency(ttfa_ms=ttfa_ms):
                    self.ttfa_ms.append(ttfa_ms)
                    logger.info("pipeline: time to first audio %.0f ms", ttfa_ms)

    def _endpoint_due(self) -> None:
        task = asyncio.ensure_future(self._judge_endpoint())
        self._endpoint_tasks.add(task)
        task.add_done_callback(self._endpoint_tasks.discard)

    async def _judge_endpoint(self) -> None:
        # The recogniser's answers to audio already sent go first: after a stall the timer
        # fires in the loop's first turn, before the results read from the socket reach
        # the turn manager (a few turns), and a caller who went on would not be seen.
        for _ in range(_CATCH_UP_TURNS):
            await asyncio.sleep(0)
        await self._apply(self.turns.endpoint_due(time.monotonic()))

    # -- tasks ------------------------------------------------------------------------------------
    async def _stt_loop(self) -> None:
        try:
            async for event in self.stt.events():
                await self._apply(self.turns.on_stt(event, time.monotonic()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("pipeline: speech recognition failed: %s", exc)
            await self._fail("stt_error", f"speech recognition failed: {exc}")

    async def _run_llm(self, start: StartLLM) -> None:
        response_id = start.response_id
        stream = self.llm.stream(
            system_prompt=self.config.system_prompt,
            history=list(start.history),
            tools=self.config.function_tools(),
            temperature=self.config.temperature,
        )
        try:
            async for event in stream:
                await self._apply(self.turns.on_llm(response_id, event))
                if not self.turns.is_current(response_id):
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("pipeline: LLM stream failed: %s", exc)
            await self._apply(self.turns.on_llm_error(response_id, str(exc)))
            return
        finally:
            await _aclose(stream)
        await self._apply(self.turns.on_llm(response_id, LLMDone()))  # ignored if already done

    async def _speech_loop(self) -> None:
        while True:
            item = await self._speech_queue.get()
            if not self.turns.is_current(item.response_id):
                continue
            self._synth_response = item.response_id
            self._synth_task = asyncio.create_task(self._synthesize(item), name="pipeline-synth")
            await asyncio.wait({self._synth_task})
            self._synth_task = self._synth_response = None

    async def _synthesize(self, item: SpeakSentence) -> None:
        spec = self.output_spec
        error: str | None = None
        stream = self.tts.synthesize(item.text)
        try:
            async for audio in stream:
                if audio:
                    chunk = AudioChunk(audio, spec.format, spec.sample_rate)
                    actions = self.turns.on_audio(
                        item.response_id, item.sentence_id, chunk, time.monotonic()
                    )
                    if not actions:
                        return  # the response was cancelled
                    await self._apply(actions)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("pipeline: synthesis failed: %s", exc)
            error = f"speech synthesis failed: {exc}"
        finally:
            await _aclose(stream)
        await self._apply(self.turns.on_sentence_done(item.response_id, item.sentence_id, error))
