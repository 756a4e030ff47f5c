"""The per-call runner: carries out the bridge core's decisions with real I/O.

One :class:`CallSession` bridges one carrier media socket and one provider session. It runs
three loops in one task group — the carrier reader, the provider event reader, and a timer that
wakes the core when pacing or a timeout is due — and carries out the core's actions in order.
Everything that must outlive a slow peer (tool calls, provider interrupts) runs in its own
task, so a slow tool never delays audio. The carrier's side apart from reading caller frames —
sending, the closing apology, the REST hang-up or transfer — is the :class:`CarrierLink`'s
(``bridge/carrier.py``); what each provider event means to the core, and the tools' results
going back, is the :class:`ProviderSide`'s (``bridge/provider_side.py``); every decision is the
:class:`BridgeCore`'s.

Audio formats are negotiated once: caller audio is converted from the carrier's format to the
provider's ``input_spec`` and agent audio from the provider's ``output_spec`` to the carrier's,
each by a stateful :class:`StreamConverter` that passes G.711 through untouched when both sides
speak it (OpenAI ``audio/pcmu``, Deepgram ``mulaw``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from switchboard.audio import Framer, StreamConverter
from switchboard.bridge import playback
from switchboard.bridge.actions import (
    Action,
    ClearCallerBuffer,
    HangUp,
    InvokeTool,
    RecordTimeline,
    RecordTranscript,
    RecordTurnLatency,
    Say,
    ScheduleWakeup,
    SendMark,
    SendToCaller,
    TransferCall,
    TruncateAssistant,
    join_frames,
)
from switchboard.bridge.carrier import CarrierControl, CarrierLink
from switchboard.bridge.control import SessionCallControl
from switchboard.bridge.core import BridgeCore, BridgeOptions
from switchboard.bridge.failover_runner import HeardTranscript, ProviderFailover
from switchboard.bridge.keypad import MenuChoice
from switchboard.bridge.keypad_link import KeypadLink, silence_like
from switchboard.bridge.operator import OperatorDesk
from switchboard.bridge.provider_side import LIVE, ProviderSide
from switchboard.bridge.restream import (
    SplicingControl,
    StreamSplice,
    agent_quiet,
    take_next_stream,
)
from switchboard.bridge.sink import CallSink, MemorySink
from switchboard.bridge.thinking import CALLER_TOOLS, ThinkingAudio
from switchboard.bridge.voice import voice_detector
from switchboard.bridge.voicemail import AmdLink
from switchboard.bridge.warm_transfer import WarmOptions, WarmTransfer
from switchboard.errors import CallerDisconnected, SwitchboardError, UnsupportedOperation
from switchboard.flags import Flag
from switchboard.media import AudioChunk, AudioSpec
from switchboard.providers.base import BaseProvider, SessionState, disconnect_quietly
from switchboard.recordings import CallRecording
from switchboard.telephony.amd import MachineDetection
from switchboard.telephony.base import (
    DtmfReceived,
    MarkAcknowledged,
    MediaCodec,
    MediaReceived,
    MediaSocket,
    StreamError,
    StreamStarted,
    StreamStopped,
)
from switchboard.telephony.dialplan import DialPlan
from switchboard.tools import ToolContext, ToolRegistry

__all__ = ["CallSession", "CallSink", "CarrierControl", "MemorySink"]

logger = logging.getLogger(__name__)


class CallSession:
    """Bridges one call until either side ends it; ``run`` returns the end reason."""

    def __init__(
        self,
        *,
        call_id: str,
        codec: MediaCodec,
        socket: MediaSocket,
        started: StreamStarted,
        provider: BaseProvider,
        tools: ToolRegistry,
        tool_context: ToolContext | None = None,
        carrier_control: CarrierControl | None = None,
        options: BridgeOptions | None = None,
        sink: CallSink | None = None,
        connect_timeout_s: float = 15.0,
        on_frame_in: Callable[[], None] | None = None,
        apology: str | None = None,
        apology_audio: Callable[[str, AudioSpec], Awaitable[bytes | None]] | None = None,
        dial_plan: DialPlan | None = None,
        greeting: tuple[bytes, str | None] | None = None,
        recorder: CallRecording | None = None,
        dtmf_menu: Mapping[str, MenuChoice] | None = None,
        thinking_after_ms: float | None = 700.0,
        thinking_audio: bytes | None = None,
        machine_detection: MachineDetection | None = None,
        greeting_text: str | None = None,
        failover: ProviderFailover | None = None,
        warm: WarmOptions | None = None,
        restream: bool = False,
    ) -> None:
        self.call_id = call_id
        self.codec = codec
        self.socket = socket
        self.started = started
        self.provider = provider
        self.tools = tools
        self.core = BridgeCore(options)
        self.sink: CallSink = sink or MemorySink()
        #: the call's media moving to a new stream (Twilio's digits: ``bridge/restream.py``)
        self.splice = StreamSplice() if restream and carrier_control is not None else None
        if self.splice is not None and carrier_control is not None:
            quiet = functools.partial(agent_quiet, self.core, self.now)
            carrier_control = SplicingControl(carrier_control, self.splice, quiet=quiet)
        self.carrier_control = carrier_control
        self.log = logging.LoggerAdapter(logger, {"call_id": call_id})
        self.carrier = CarrierLink(
            codec=codec,
            socket=socket,
            control=carrier_control,
            sink=self.sink,
            clock=self.now,
            log=self.log,
        )
        self.tool_context = tool_context or ToolContext(call_id=call_id)
        self.tool_context.control = SessionCallControl(self)
        #: Where ``transfer_call`` may dial (the agent's); None refuses every destination.
        self.dial_plan = dial_plan or DialPlan()
        self.connect_timeout_s = connect_timeout_s
        self.end_reason: str | None = None
        self._loop = asyncio.get_running_loop()
        self._wake_at: float | None = None
        self._wake = Flag()  # (Flag: an asyncio.Event that allocates nothing until waited on)
        self._wake_timer: asyncio.TimerHandle | None = None
        self._done = Flag()
        self._background: set[asyncio.Task[Any]] = set()
        #: the carrier told to hang up or transfer as soon as the call ended (see _tell_carrier)
        self._carrier_told: tuple[HangUp | TransferCall, asyncio.Task[None]] | None = None
        self._inbound: StreamConverter | None = None
        self._batch: Framer | None = None  # caller audio gathered per send (input_batch_ms)
        self._provider_side: ProviderSide | None = None  # once the provider is connected
        self._on_frame_in = on_frame_in
        self.apology = apology
        #: the offline voice: a line of text in a carrier format (``bridge/playback.py``)
        self.apology_audio = apology_audio
        #: a recorded greeting: carrier audio and the text that stands for it in the transcript
        self._greeting = greeting
        #: listeners, and an operator who takes the call over (``bridge/operator.py``)
        self.operator = OperatorDesk(started.audio)
        #: The call's recording (``recordings/``): it sees every frame crossing the carrier
        #: socket and every ``clear``; a redaction (keypad digits) goes to its ``redact``.
        self.recorder = recorder
        #: the caller's keypad (``press`` takes digits; ``redacting``/``spans``: the redaction
        #: hook, docs/telephony.md#keypad-dtmf)
        self.keypad = KeypadLink(self, dtmf_menu, spawn=self._spawn)
        self.tool_context.keypad = self.keypad
        #: the sound while a slow tool runs (``bridge/thinking.py``); None: none
        self.thinking = (
            ThinkingAudio(
                spec=started.audio,
                send=self._send_thinking,
                busy=self.core.agent_speaking,
                clock=self.now,
                sink=self.sink,
                audio=thinking_audio,
                after_ms=thinking_after_ms,
            )
            if thinking_after_ms is not None
            else None
        )
        #: an outbound call's answering-machine detection (``bridge/voicemail.py``); the
        #: greeting waits for its verdict
        self.amd = (
            AmdLink(self, machine_detection, greeting=greeting_text, spawn=self._spawn)
            if machine_detection is not None
            else None
        )
        #: moves the call to its next provider when this one fails (bridge/failover_runner.py)
        self.failover = failover
        #: warm transfers (``bridge/warm_transfer.py``); None: the carrier cannot do them
        self.warm = (
            WarmTransfer(
                self, warm, spec=started.audio, send=self._send_thinking, transcript=self._lines
            )
            if warm is not None
            else None
        )

    # -- clock -----------------------------------------------------------------------------------
    def now(self) -> float:
        return self._loop.time() * 1000.0

    def _lines(self) -> list[tuple[str, str]]:
        """The transcript so far as ``(role, text)``, when the sink keeps it (failover's)."""
        if not isinstance(self.sink, HeardTranscript):
            return []
        return [(turn.role, turn.text) for turn in self.sink.lines]

    # -- main ------------------------------------------------------------------------------------
    async def run(self) -> str:
        """Bridge until the call ends; always finalises (provider closed, socket closed)."""
        try:
            if self.provider.state is SessionState.DISCONNECTED:
                await asyncio.wait_for(self.provider.connect(), self.connect_timeout_s)
        except (TimeoutError, SwitchboardError, OSError) as exc:
            self.log.error("provider connect failed: %s", exc)
            if self.failover is None:
                await self.apply(self.core.provider_lost(failed=True, now=self.now()))
                await self._finish()
                return self.end_reason or "provider_failed"
        if (  # did not connect: the next provider, before the caller hears 2 s of silence
            self.failover is not None
            and self.provider.state not in LIVE
            and not await self.failover.start_over(self)
        ):
            await self.apply(self.core.provider_lost(failed=True, now=self.now()))
            await self._finish()
            return self.end_reason or "provider_failed"
        carrier = self.started.audio
        self._bind_provider(self.provider)
        self.log.info(
            "bridging %s/%d ⇄ provider in %s/%d out %s/%d",
            carrier.format,
            carrier.sample_rate,
            self.provider.input_spec.format,
            self.provider.input_spec.sample_rate,
            self.provider.output_spec.format,
            self.provider.output_spec.sample_rate,
        )
        await self.apply(self.core.start(self.now()))
        if self.amd is None:  # with AMD, the greeting waits for a person
            await self.play_greeting()
        else:
            await self.amd.start()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._carrier_loop()),
                    group.create_task(self._provider_loop()),
                    group.create_task(self._timer_loop()),
                ]
                if self.failover is not None:
                    tasks.append(group.create_task(self.failover.watch(self)))
                await self._done.wait()
                for task in tasks:
                    task.cancel()
        except* Exception as group_error:  # a bug in one loop ends this call only
            for failure in group_error.exceptions:
                self.log.error("call loop failed: %r", failure, exc_info=failure)
            self.end("internal_error")
        await self._finish()
        return self.end_reason or "completed"

    async def play_greeting(self) -> bool:
        """Play the agent's recorded greeting like an agent reply (paced, interruptible);
        False when it has none."""
        if self._greeting is None:
            return False
        audio, text = self._greeting
        await playback.play_as_reply(self, audio, text or "(greeting)")
        return True

    async def play_offline(self, text: str, what: str) -> bool:
        """Speak ``text`` with the offline voice, played like an agent reply (False: no
        offline voice, or it failed)."""
        return await playback.play_offline(self, text, what)

    def end(self, reason: str) -> None:
        """End the call with ``reason`` (the first reason given wins)."""
        if self.end_reason is None:
            self.end_reason = reason
            self.log.info("call ending: %s", reason)
        self._done.set()

    def _tell_carrier(self) -> None:
        """Send the core's hang-up or transfer to the carrier now, beside the call's loops:
        waiting until they had all stopped (recording, provider, timers) made a hang-up reach
        the carrier up to a second late on a busy node. A task of its own, outside the call's
        task group, so the loops' cancellation cannot cut the request short."""
        action = self.core.carrier_action
        if action is None or self._carrier_told is not None:
            return
        task = asyncio.get_running_loop().create_task(self.carrier.carry_out(action))
        self._carrier_told = (action, task)

    async def _finish(self) -> None:
        self.keypad.close()
        if self.splice is not None:
            self.splice.close()
        if self.amd is not None:
            self.amd.close()
        if self.thinking is not None:
            self.thinking.stop("call_ended")
        for action in self.core.finish(self.now()):
            self._record(action)
        for task in list(self._background):
            task.cancel()
        if self._wake_timer is not None:
            self._wake_timer.cancel()
        if self.end_reason == "provider_failed":
            await playback.apologise(self)
        if self.recorder is not None:
            self.recorder.stop(self.now())
        # The carrier's REST call: under way since the call ended (_tell_carrier), else now.
        told, decided = self._carrier_told, self.core.carrier_action
        if told is not None:
            await told[1]
        if decided is not None and (told is None or told[0] is not decided):
            await self.carrier.carry_out(decided)
        await disconnect_quietly(self.provider)
        await self.carrier.close(self.end_reason or "completed")
        self.sink.timeline("call.ended", self.now(), {"reason": self.end_reason})

    # -- loops -----------------------------------------------------------------------------------
    async def _carrier_loop(self) -> None:
        while True:
            await self._read_stream()  # until the stream stops or its socket closes
            if not await take_next_stream(self):  # the call goes on with its next stream?
                self.end(self._gone())
                return

    async def _read_stream(self) -> None:
        receive, decode = self.socket.receive_text, self.codec.receive
        voiced = voice_detector(self.started.audio.format)
        caller_frame = self.core.caller_frame
        failover = self.failover
        try:
            while True:
                text = await receive()
                for event in decode(text):
                    match event:
                        case MediaReceived(payload=payload):
                            if self._on_frame_in is not None:
                                self._on_frame_in()
                            now, is_voice = self.now(), bool(payload) and voiced(payload)
                            if self.recorder is not None:
                                self.recorder.caller_audio(payload, now)
                            self.operator.caller_audio(payload)
                            if self.operator.taken_over:  # the operator hears it, not the agent
                                self.core.keep_alive(now)
                                continue
                            barge_in = caller_frame(is_voice, now)
                            if barge_in:
                                self.log.info(
                                    "caller speech over agent audio: barge-in (bridge VAD)"
                                )
                                await self.apply(barge_in)
                            if failover is not None:
                                failover.caller_frame(payload, is_voice, now)
                                if failover.switching:  # replayed to the next provider
                                    continue
                            await self.send_caller_audio(payload)
                        case MarkAcknowledged(name=name):
                            await self.apply(self.core.mark_acked(name, self.now()))
                        case DtmfReceived(digit=digit):
                            await self.keypad.press(digit, "media")
                        case StreamStopped():
                            return
                        case StreamError(code=code, message=message):
                            self.log.warning("carrier stream error %s: %s", code, message)
                            self.sink.timeline("carrier.error", self.now(), {"code": code})
                        case _:
                            pass
        except CallerDisconnected:
            return

    def _gone(self) -> str:
        """Why the caller's stream ended: a warm transfer's join takes it away."""
        return "transferred" if self.warm is not None and self.warm.joining else "caller_hangup"

    async def _provider_loop(self) -> None:
        while True:
            provider, provider_side = self.provider, self._provider_side
            assert provider_side is not None
            async for event in provider.receive_events():
                if self.provider is not provider:  # failed over: the old one's last words
                    break
                if self.operator.screen(event):  # an operator has the call: the agent is off air
                    continue
                received = self.now()
                if self.failover is not None and self.failover.hides(event):
                    continue
                await provider_side.handle(event)
                # The sink times the provider (metrics) after the event is handled, so a turn
                # it starts is already on the timeline.
                self.sink.provider_event(event.type, received)
                if self.failover is not None:
                    self.failover.provider_event(event, received)
                if self._done.is_set():
                    break
            if self._done.is_set():
                return
            if self.provider is not provider or (
                self.failover is not None and await self.failover.provider_gone(self, provider)
            ):
                continue  # a fallback provider bridges the call now
            break
        if self.end_reason is None:
            failed = self.provider.state is SessionState.FAILED
            await self.apply(self.core.provider_lost(failed=failed, now=self.now()))

    async def _timer_loop(self) -> None:
        # One loop timer (call_at → event) per wakeup, not a wait_for task per wait: pacing
        # wakeups come every frame when audio is queued (bench/capacity.py).
        while True:
            await self._wake.wait()
            self._wake.clear()
            at = self._wake_at
            if at is not None and self.now() < at:  # the loop may run a timer a hair early
                self._wake_timer = self._loop.call_at(at / 1000.0, self._wake.set)
            elif at is not None:
                self._wake_at = None
                await self.apply(self.core.tick(self.now()))

    # -- the provider ------------------------------------------------------------------------------
    def _bind_provider(self, provider: BaseProvider) -> None:
        """Bridge ``provider`` from now on (its audio formats, its side of the session)."""
        carrier = self.started.audio
        self.provider = provider
        # unaligned: each caller frame's audio at once (audio/fir.py; 12 ms less round trip)
        self._inbound = StreamConverter(carrier, provider.input_spec, aligned=False)
        batch_ms = provider.input_batch_ms
        self._batch = Framer(provider.input_spec, frame_ms=batch_ms) if batch_ms > 0 else None
        self._provider_side = ProviderSide(
            provider=provider,
            core=self.core,
            sink=self.sink,
            carrier=carrier,
            apply=self.apply,
            clock=self.now,
            log=self.log,
            on_tool_result=self.failover.tool_result_sent if self.failover else None,
        )

    async def replace_provider(self, provider: BaseProvider) -> None:
        """A failover: ``provider`` (connected) takes the call; a reply the old one left
        unfinished ends here (what was queued of it still plays)."""
        await self.apply(self.core.response_done("incomplete", self.now()))
        self._bind_provider(provider)

    async def send_caller_audio(self, payload: bytes) -> None:
        """Caller audio (the carrier's format) to the provider, converted to its input."""
        provider, inbound = self.provider, self._inbound
        assert inbound is not None
        data = inbound.process(payload)
        spec = provider.input_spec
        held = self.warm is not None and self.warm.holding  # on hold: a warm transfer runs
        if self.keypad.collecting or held or (self.amd is not None and self.amd.listening):
            data = silence_like(data, spec)  # no key tones for the model, no machine greeting
        if self._batch is not None:  # whole batches only; the rest waits for the next frame
            data = b"".join(self._batch.push(data))
        if data and provider.state in LIVE:
            await provider.send_audio(AudioChunk(data, spec.format, spec.sample_rate))

    async def play_agent_audio(self, frames: list[bytes], text: str) -> None:
        """Play carrier frames to the caller as an agent reply saying ``text`` (a filler)."""
        now = self.now()
        await self.apply(self.core.agent_audio(frames, now))
        await self.apply(self.core.agent_text(text, final=True, now=now))
        await self.apply(self.core.response_done("completed", now))

    def spawn(self, coro: Awaitable[Any], what: str) -> None:
        """Run ``coro`` beside the call's loops (cancelled when the call ends)."""
        self._spawn(coro, what)

    # -- actions ---------------------------------------------------------------------------------
    async def apply(self, actions: list[Action]) -> None:
        """Carry out the core's actions in order."""
        if len(actions) > 1 and self.codec.joins_frames:
            actions = join_frames(actions)
        for action in actions:
            match action:
                case SendToCaller(payload=payload):
                    self.operator.agent_audio(payload)
                    if self.recorder is not None:
                        self.recorder.agent_audio(payload, self.now())
                    if self.thinking is not None:
                        self.thinking.stop()  # the first reply frame ends the thinking sound
                    await self._send(self.codec.send_media(payload))
                case SendMark(name=name):
                    await self._send(self.codec.send_mark(name))
                case ClearCallerBuffer():
                    if self.recorder is not None:
                        self.recorder.cleared(self.now())
                    await self._send(self.codec.send_clear())
                    self.operator.clear()
                    if self._provider_side is not None:
                        self._provider_side.clear()
                case TruncateAssistant(played_ms=played_ms):
                    self._spawn(self.provider.interrupt(played_ms), "interrupt")
                case InvokeTool(call_id=call_id, name=name, arguments=arguments):
                    assert self._provider_side is not None  # the core calls tools once bridging
                    tool = self._provider_side.invoke_tool(
                        self.tools, self.tool_context, call_id, name, arguments
                    )
                    if self.thinking is not None and name not in CALLER_TOOLS:
                        tool = self.thinking.around(tool)
                    self._spawn(tool, f"tool {name}")
                case HangUp(reason=reason):
                    self.end(reason)
                    if reason != "provider_failed":  # that one apologises first (_finish)
                        self._tell_carrier()
                case TransferCall(destination=destination):
                    self.sink.timeline("call.transferred", self.now(), {"to": destination})
                    self.end("transferred")
                    self._tell_carrier()
                case Say(text=text, reason=reason):
                    self._spawn(self._say(text), f"say ({reason})")
                case ScheduleWakeup(at_ms=at_ms):
                    if self._wake_at is None or at_ms < self._wake_at:
                        self._wake_at = at_ms
                        if self._wake_timer is not None:
                            self._wake_timer.cancel()
                        self._wake_timer = self._loop.call_at(at_ms / 1000.0, self._wake.set)
                case _:
                    self._record(action)
                    done = isinstance(action, RecordTimeline) and action.kind == "response.done"
                    if done and self.thinking is not None:
                        self.thinking.reply_done()

    def _record(self, action: Action) -> None:
        match action:
            case RecordTranscript(role=role, text=text, at_ms=at_ms, interrupted=interrupted):
                self.sink.transcript(role, text, at_ms, interrupted)
            case RecordTurnLatency(turn=turn, latency_ms=latency_ms):
                self.log.debug("turn %d latency %.1f ms", turn, latency_ms)  # bench/local_turn.py
                self.sink.turn_latency(turn, latency_ms)
            case RecordTimeline(kind=kind, at_ms=at_ms, data=data):
                self.log.debug("timeline %s at %.1f ms", kind, at_ms)  # bench/local_turn.py
                self.sink.timeline(kind, at_ms, data)
            case _:
                pass

    async def _send_thinking(self, frame: bytes) -> None:
        if self.recorder is not None:  # the caller hears it: the recording's right channel
            self.recorder.agent_audio(frame, self.now())
        await self._send(self.codec.send_media(frame))

    async def _send(self, text: str) -> None:
        if self._done.is_set() and self.end_reason == "caller_hangup":
            return
        if not await self.carrier.send(text):
            if self.splice is not None and self.splice.moving:
                return  # the stream is moving: lost with the old one, as the redirect cut it
            self.end("caller_hangup")

    def _spawn(self, coro: Awaitable[Any], what: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failing side task must not end the call
                self.log.warning("%s failed: %s", what, exc)

        task = self._loop.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _say(self, text: str) -> None:
        try:
            await self.provider.say(text)
        except UnsupportedOperation:
            self.log.info("provider cannot speak arbitrary text; skipped")
