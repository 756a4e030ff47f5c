"""A rule-based :class:`~switchboard.providers.pipeline.components.TextLLM` for the local provider.

No language model runs offline well enough on a small CPU
(``docs/local-models.md#why-these-models``), so the local agent answers from an
:class:`~.agent.AgentScript`: intents with example phrases, slots and reply templates. It speaks the
same protocol as a real chat model, so the pipeline engine's tool loop, barge-in and history work
unchanged: it yields text, makes real function calls (:class:`LLMFunctionCall`), and when the engine
comes back with the tool result in the history it continues with the intent's ``after_tool``
template.

Theory of operation (one object per call; the history decides what to do next)::

    last message is a tool result ──▶ reply from the intent that made that call
                                      (after_tool, or on_error when the result has "error")
    last message is the caller's:
      waiting for a slot? ──filled──▶ act on the pending intent
             │ not filled: another intent matches ▶ switch to it
             │ otherwise: ask again (max_reasks), then fall back
      match an intent ──all slots known──▶ reply + tool call (if the tool is offered)
             │ a slot is missing ──▶ ask for it and wait
      no match ──▶ a fallback line (they rotate)

A tool is *offered* when it is in the ``tools`` the engine passes or in the agent's own
``tools:`` list (call-control tools the platform always provides, e.g. ``end_call``). An intent
whose tool is not offered says ``reply`` and ``unavailable`` instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from switchboard.providers.local.agent import AgentScript, IntentSpec, load_agent, render
from switchboard.providers.local.matching import extract_slot, match_intent
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
)

__all__ = ["RuleDialog"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    """An intent waiting for the caller to give ``missing``."""

    intent: IntentSpec
    values: dict[str, Any]
    missing: str
    asked: int = 1


@dataclass(frozen=True, slots=True)
class _Call:
    intent: IntentSpec
    values: dict[str, Any] = field(default_factory=dict)


class RuleDialog:
    """Intent/template dialog engine for one call (see the module docstring).

    Args:
        agent: the script; the packaged receptionist by default.
        max_reasks: how many times a missing slot is asked for before giving up.
    """

    def __init__(self, agent: AgentScript | None = None, *, max_reasks: int = 2) -> None:
        self.agent = agent if agent is not None else load_agent()
        self._max_reasks = max_reasks
        self._pending: _Pending | None = None
        self._calls: dict[str, _Call] = {}
        self._call_count = 0
        self._fallbacks = 0
        #: Name of the intent chosen for each caller turn (``None`` for a fallback): for tests/logs.
        self.trace: list[str | None] = []

    async def stream(
        self,
        *,
        system_prompt: str | None,
        history: list[ChatMessage],
        tools: list[dict[str, Any]],
        temperature: float | None = None,
    ) -> AsyncIterator[LLMEvent]:
        """The next assistant turn for ``history`` (``system_prompt``/``temperature`` unused)."""
        for event in self.respond(history, tools):
            yield event

    async def aclose(self) -> None:
        """Nothing to release."""

    # -- the decision (pure) -------------------------------------------------------------------
    def respond(self, history: list[ChatMessage], tools: list[dict[str, Any]]) -> list[LLMEvent]:
        """Decide the next assistant turn synchronously."""
        offered = {str(t.get("function", t).get("name")) for t in tools} | set(self.agent.tools)
        if not history:
            return [LLMDone(finish_reason="stop")]
        last = history[-1]
        if last.role == "tool":
            return self._after_tools(history)
        if last.role != "user":
            return [LLMDone(finish_reason="stop")]
        return self._on_user(last.content, offered)

    def _on_user(self, text: str, offered: set[str]) -> list[LLMEvent]:
        pending, self._pending = self._pending, None
        if pending is not None:
            spec = self.agent.slots[pending.missing]
            value = extract_slot(text, spec)
            if value is not None:
                pending.values[pending.missing] = value
                self.trace.append(pending.intent.name)
                return self._act(pending.intent, pending.values, text, offered)
            match = match_intent(text, self.agent)
            if match is not None and match.intent is not pending.intent:
                self.trace.append(match.intent.name)
                return self._act(match.intent, {}, text, offered)
            if pending.asked < self._max_reasks:
                pending.asked += 1
                self._pending = pending
                self.trace.append(pending.intent.name)
                return self._say(self._ask(pending.intent, pending.missing, pending.values))
        match = match_intent(text, self.agent)
        if match is None:
            self.trace.append(None)
            line = self.agent.fallback[self._fallbacks % len(self.agent.fallback)]
            self._fallbacks += 1
            return self._say(line)
        logger.debug("intent %s (score %.2f)", match.intent.name, match.score)
        self.trace.append(match.intent.name)
        return self._act(match.intent, {}, text, offered)

    def _act(
        self, intent: IntentSpec, values: dict[str, Any], text: str, offered: set[str]
    ) -> list[LLMEvent]:
        for name in intent.slots:
            if name in values:
                continue
            spec = self.agent.slots[name]
            value = extract_slot(text, spec) if spec.type != "text" else None
            if value is None:
                self._pending = _Pending(intent, values, name)
                return self._say(self._ask(intent, name, values))
            values[name] = value
        events: list[LLMEvent] = []
        reply = render(intent.reply, values)
        tool = intent.tool
        if tool is not None and tool.name in offered:
            if reply:
                events.append(LLMTextDelta(reply))
            self._call_count += 1
            call_id = f"local_call_{self._call_count}"
            self._calls[call_id] = _Call(intent, dict(values))
            arguments = {k: _argument(v, values) for k, v in tool.arguments.items()}
            events.append(LLMFunctionCall(call_id=call_id, name=tool.name, arguments=arguments))
            events.append(LLMDone(finish_reason="tool_calls"))
            return events
        if tool is not None:
            logger.info("tool %s is not offered; intent %s answers without it", tool.name, intent)
            reply = " ".join(p for p in (reply, render(intent.unavailable, values)) if p)
        return self._say(reply)

    def _ask(self, intent: IntentSpec, slot: str, values: dict[str, Any]) -> str:
        return render(intent.ask.get(slot, f"What is the {slot.replace('_', ' ')}?"), values)

    def _after_tools(self, history: list[ChatMessage]) -> list[LLMEvent]:
        parts: list[str] = []
        index = len(history)
        while index > 0 and history[index - 1].role == "tool":
            index -= 1
        for message in history[index:]:
            call = self._calls.pop(message.tool_call_id or "", None)
            if call is None:
                call = self._call_for_name(message.name)
            if call is None:
                continue
            result = _parse(message.content)
            failed = isinstance(result, dict) and "error" in result
            template = call.intent.on_error if failed else call.intent.after_tool
            text = render(template, {**call.values, "result": result})
            if text:
                parts.append(text)
        return self._say(" ".join(parts))

    def _call_for_name(self, name: str | None) -> _Call | None:
        for intent in self.agent.intents:
            if intent.tool is not None and intent.tool.name == name:
                return _Call(intent)
        return None

    @staticmethod
    def _say(text: str) -> list[LLMEvent]:
        events: list[LLMEvent] = [LLMTextDelta(text)] if text else []
        events.append(LLMDone(output_tokens=len(text.split()), finish_reason="stop"))
        return events


def _argument(template: Any, values: dict[str, Any]) -> Any:
    """Render one tool argument; ``"{slot}"`` alone keeps the slot's own type (an int stays int)."""
    if not isinstance(template, str):
        return template
    stripped = template.strip()
    if stripped.startswith("{") and stripped.endswith("}") and stripped[1:-1] in values:
        return values[stripped[1:-1]]
    return render(template, values)


def _parse(content: str) -> Any:
    try:
        return json.loads(content)
    except (json.JSONDecodeError, TypeError):
        return content
