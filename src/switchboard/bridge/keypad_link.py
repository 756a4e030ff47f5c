"""One call's keypad, as the session runs it: the pure :class:`Keypad`'s decisions carried out.

:class:`KeypadLink` feeds the keypad the digits the carrier reports (media stream, or the
Telnyx webhook through the call manager) and a timer, and carries out what the keypad
decides: a digit on the timeline (``*`` while redacting), digits to the model as a caller
input (``provider.send_caller_text``, in the transcript as ``(pressed 4 2)``), a menu choice
(transfer through the agent's dial plan, a line said, a hang-up), and the end of a
``collect_digits`` collection. It is the call's :class:`~switchboard.tools.DigitCollector`.

Redaction hook (for recordings and anything else that keeps the call): while a redacting
collection runs, :attr:`KeypadLink.redacting` is true, the caller's audio goes to the
provider as silence, and the timeline carries ``keypad.redaction`` ``{"state": "started"}``
/ ``{"state": "ended"}`` at the span's ends; :attr:`KeypadLink.spans` lists the spans on the
session's clock (ms). See docs/telephony.md#keypad-dtmf.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from switchboard.bridge.actions import Action, Say
from switchboard.bridge.carrier import CarrierControl
from switchboard.bridge.core import BridgeCore
from switchboard.bridge.keypad import (
    DigitRecorded,
    DigitsCollected,
    DigitsForAgent,
    Keypad,
    KeypadEvent,
    MenuChoice,
    MenuSelected,
    Source,
)
from switchboard.bridge.sink import CallSink
from switchboard.errors import SwitchboardError, ToolError, UnsupportedOperation
from switchboard.media import AudioFormat, AudioSpec
from switchboard.providers.base import BaseProvider
from switchboard.recordings import CallRecording
from switchboard.telephony.dialplan import DialPlan
from switchboard.tools import CollectedDigits

__all__ = ["SENDABLE", "KeypadLink", "KeypadRunner", "silence_like"]

#: What ``send_digits`` may play: keys, and ``w`` for a half-second pause (both carriers).
SENDABLE = frozenset("0123456789*#ABCDw")

_SILENT_BYTE = {AudioFormat.ULAW: 0xFF, AudioFormat.ALAW: 0xD5}


def silence_like(data: bytes, spec: AudioSpec) -> bytes:
    """Silence as long as ``data`` in ``spec`` (raw G.711 or PCM16): what the provider hears
    of the caller while digits are collected, so the model hears no key tones."""
    return bytes([_SILENT_BYTE.get(spec.format, 0)]) * len(data)


class KeypadRunner(Protocol):
    """What the keypad needs of its call (``CallSession`` provides it)."""

    @property
    def core(self) -> BridgeCore: ...

    @property
    def dial_plan(self) -> DialPlan: ...

    @property
    def sink(self) -> CallSink: ...

    @property
    def provider(self) -> BaseProvider: ...

    @property
    def log(self) -> logging.LoggerAdapter[Any]: ...

    @property
    def carrier_control(self) -> CarrierControl | None: ...

    @property
    def recorder(self) -> CallRecording | None:
        """The call's recording, whose redacted spans are silence (docs/recordings.md)."""
        ...

    def now(self) -> float: ...

    async def apply(self, actions: list[Action]) -> None: ...


class KeypadLink:
    """The keypad of one call (see the module docstring)."""

    def __init__(
        self,
        runner: KeypadRunner,
        menu: Mapping[str, MenuChoice] | None = None,
        *,
        spawn: Callable[[Awaitable[Any], str], None],
    ) -> None:
        self.keypad = Keypad(menu)
        self._runner = runner
        self._spawn = spawn
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Future[DigitsCollected] | None = None
        self._lock = asyncio.Lock()  # one collection at a time
        self._closed = False

    @property
    def redacting(self) -> bool:
        """A redacting collection is under way (keep no caller audio, no keys)."""
        return self.keypad.redacting

    @property
    def collecting(self) -> bool:
        return self.keypad.collecting

    @property
    def spans(self) -> list[tuple[float, float | None]]:
        """Redacted spans ``(start_ms, end_ms)`` on the session's clock (end None: open)."""
        return self.keypad.spans

    async def press(self, digit: str, source: Source) -> None:
        """A key the carrier reported (``media`` stream or ``webhook``); none after the end."""
        if not self._closed:
            await self._handle(self.keypad.press(digit, source, self._runner.now()))

    async def collect(
        self,
        *,
        prompt: str | None,
        max_digits: int,
        finish_on_key: str,
        timeout_s: float,
        redact: bool,
    ) -> CollectedDigits:
        """``collect_digits``: say ``prompt``, then wait for the keypad's collection to end."""
        async with self._lock:
            r = self._runner
            loop = asyncio.get_running_loop()
            self._waiting = waiting = loop.create_future()
            if prompt:
                await r.apply([Say(prompt, "collect_digits")])
            now = r.now()
            r.sink.timeline("keypad.collect", now, {"max_digits": max_digits, "redact": redact})
            if redact:
                r.sink.timeline("keypad.redaction", now, {"state": "started"})
                if r.recorder is not None:  # the keys' tones are silence in the recording
                    r.recorder.redact(now, None)
            events = self.keypad.collect(
                max_digits=max_digits,
                finish_on_key=finish_on_key,
                timeout_ms=timeout_s * 1000.0,
                redact=redact,
                now=now,
            )
            await self._handle(events)
            try:
                done = await waiting
            finally:
                self._waiting = None
                if self.keypad.collecting:  # the tool was cancelled (timeout, call ended)
                    await self._handle(self.keypad.cancel(r.now()))
            return CollectedDigits(done.digits, done.ended_by)

    async def send(self, digits: str) -> None:
        """``send_digits``: play ``digits`` to the far end through the carrier.

        Raises:
            ToolError: bad digits, no carrier control, or the carrier refused (for the model).
        """
        if not digits or any(d not in SENDABLE for d in digits):
            raise ToolError("digits may be 0-9, *, #, A-D and w (a half-second pause)")
        r = self._runner
        control = r.carrier_control
        if control is None:
            raise ToolError("no carrier control on this call")
        try:
            await control.send_dtmf(digits)
        except SwitchboardError as exc:
            raise ToolError(f"could not send the digits: {exc}") from exc
        r.sink.timeline("keypad.sent", r.now(), {"digits": len(digits)})

    def close(self) -> None:
        """The call ended: no more timers; a collection under way ends as ``cancelled``."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            waiting.set_result(DigitsCollected("", "cancelled", self.keypad.redacting))

    # -- internals -------------------------------------------------------------------------------
    async def _tick(self) -> None:
        await self._handle(self.keypad.tick(self._runner.now()))

    async def _handle(self, events: list[KeypadEvent]) -> None:
        r = self._runner
        for event in events:
            match event:
                case DigitRecorded(shown=shown, source=source, at_ms=at_ms):
                    r.sink.timeline("caller.dtmf", at_ms, {"digit": shown, "source": source})
                case DigitsForAgent(digits=digits):
                    r.sink.transcript("caller", f"(pressed {' '.join(digits)})", r.now(), False)
                    self._spawn(self._send_text(event.text), "keypad digits to the agent")
                case MenuSelected(digit=digit, choice=choice):
                    await self._menu(digit, choice)
                case DigitsCollected():
                    self._collected(event)
        self._schedule()

    def _collected(self, event: DigitsCollected) -> None:
        r, now = self._runner, self._runner.now()
        if event.redacted:
            r.sink.timeline("keypad.redaction", now, {"state": "ended"})
            if r.recorder is not None:
                r.recorder.end_redaction(now)
            shown = "****" if event.digits else ""
        else:
            shown = " ".join(event.digits)
        r.sink.timeline("keypad.collected", now, {"ended_by": event.ended_by})
        if shown:
            r.sink.transcript("caller", f"(keyed {shown})", now, False)
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            waiting.set_result(event)

    async def _send_text(self, text: str) -> None:
        try:
            await self._runner.provider.send_caller_text(text)
        except UnsupportedOperation:
            self._runner.log.info("provider takes no text input; keypad digits not sent")

    async def _menu(self, digit: str, choice: MenuChoice) -> None:
        r = self._runner
        now = r.now()
        r.sink.timeline("keypad.menu", now, {"digit": digit})
        if choice.say:
            await r.apply([Say(choice.say, "dtmf_menu")])
        if choice.hang_up:
            await r.apply(r.core.request_hang_up("dtmf_menu", now, after_reply=bool(choice.say)))
        if choice.transfer:
            decision = r.dial_plan.check(choice.transfer)
            if not decision.allowed or decision.destination is None:
                r.log.warning("menu transfer for key %s refused: %s", digit, decision.reason)
                r.sink.timeline("call.transfer_refused", now, {"requested": choice.transfer[:100]})
                return
            after = bool(choice.say)  # a line said first plays before the transfer
            await r.apply(r.core.request_transfer(decision.destination, now, after_reply=after))

    def _schedule(self) -> None:
        due = self.keypad.due_at
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if due is None or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(due / 1000.0, lambda: self._spawn(self._tick(), "keypad"))
