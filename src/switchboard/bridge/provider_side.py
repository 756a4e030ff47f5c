"""The provider's end of one call, as the session drives it: its events in, tool results out.

:class:`ProviderSide` turns what the provider reports into the bridge core's inputs — agent
audio converted from the provider's ``output_spec`` to the carrier's format by a stateful
:class:`StreamConverter` and cut into 20 ms frames, text, the caller's transcript and speech
events, function calls, the end of a reply — and records what the core has no say in (usage,
reconnects, errors). It runs the agent's tools the core asks for and hands their results
back to the provider. The actions the core returns are carried out by the session (``apply``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, assert_never

from switchboard.audio import Framer, StreamConverter
from switchboard.bridge.actions import Action
from switchboard.bridge.core import BridgeCore
from switchboard.bridge.sink import CallSink
from switchboard.media import AudioSpec
from switchboard.providers.base import BaseProvider, SessionState
from switchboard.providers.events import (
    AudioOutput,
    CallerTranscript,
    ErrorReport,
    FunctionCall,
    ProviderEvent,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ResponseInterrupted,
    SpeechStarted,
    SpeechStopped,
    TextOutput,
)
from switchboard.tools import ToolContext, ToolRegistry

__all__ = ["LIVE", "ProviderSide"]

#: Provider states in which it takes audio and function results.
LIVE = (SessionState.CONNECTED, SessionState.RECONNECTING)


class ProviderSide:
    """One call's provider side (see the module docstring); made once the provider is connected.

    Args:
        provider: the connected provider session.
        core: the call's bridge core.
        sink: where the call's record goes.
        carrier: the carrier's audio format (agent audio is converted to it).
        apply: the session's way of carrying out the core's actions.
        clock: the session's clock (milliseconds).
        log: the call's logger.
        on_tool_result: told when a tool's result went back to the provider.
    """

    def __init__(
        self,
        *,
        provider: BaseProvider,
        core: BridgeCore,
        sink: CallSink,
        carrier: AudioSpec,
        apply: Callable[[list[Action]], Awaitable[None]],
        clock: Callable[[], float],
        log: logging.LoggerAdapter[Any],
        on_tool_result: Callable[[float], None] | None = None,
    ) -> None:
        self.provider = provider
        self.core = core
        self.sink = sink
        self.log = log
        self._apply = apply
        self._clock = clock
        self._outbound = StreamConverter(provider.output_spec, carrier)
        self._framer = Framer(carrier)
        self._on_tool_result = on_tool_result

    def clear(self) -> None:
        """Drop agent audio converted but not yet sent (the caller's buffer was cleared)."""
        self._framer.clear()
        self._outbound.reset()

    async def handle(self, event: ProviderEvent) -> None:
        """Feed one provider event to the core and carry out what it decides."""
        now = self._clock()
        core, apply = self.core, self._apply
        match event.data:
            case AudioOutput(chunk=chunk):
                frames = self._framer.push(self._outbound.process(chunk.data))
                await apply(core.provider_audio(frames, now))
            case TextOutput(text=text, final=final):
                await apply(core.agent_text(text, final=final, now=now))
            case CallerTranscript(text=text, final=final):
                await apply(core.caller_transcript(text, final=final, now=now))
            case SpeechStarted():
                await apply(core.provider_speech_started(now))
            case SpeechStopped():
                await apply(core.provider_speech_stopped(now))
            case ResponseInterrupted():
                await apply(core.provider_interrupted(now))
            case FunctionCall(call_id=call_id, name=name, arguments=arguments):
                await apply(core.function_call(call_id, name, arguments, now))
            case ResponseDone(status=status, usage=usage):
                tail = self._framer.push(self._outbound.flush()) + self._framer.flush()
                if tail:
                    await apply(core.agent_audio(tail, now))
                self.sink.usage(usage)
                await apply(core.response_done(status, now))
            case Reconnecting() | Reconnected():
                self.sink.timeline(
                    f"provider.{event.type.value.split('.')[-1]}", now, dict(event.data)
                )
            case ErrorReport(code=code, message=message, fatal=fatal):
                self.log.warning("provider error %s: %s", code, message)
                self.sink.timeline(
                    "provider.error", now, {"code": code, "message": message, "fatal": fatal}
                )
            case unknown:
                assert_never(unknown)

    async def invoke_tool(
        self,
        tools: ToolRegistry,
        context: ToolContext,
        call_id: str,
        name: str,
        arguments: dict[str, Any],
    ) -> None:
        """Run the tool the model called and hand its result (or error) back to the model."""
        result = await tools.invoke(name, arguments, context, call_id=call_id)
        self.sink.tool_call(result, self._clock())
        if result.ok:
            self.log.info("tool %s ok in %.0f ms", name, result.duration_ms)
        else:
            self.log.warning("tool %s failed: %s", name, result.error)
        if self.provider.state in LIVE:
            await self.provider.handle_function_result(call_id, result.output)
            if self._on_tool_result is not None:  # a reply is due now (failover's stall)
                self._on_tool_result(self._clock())
        await self._apply(self.core.function_result_sent(self._clock()))
