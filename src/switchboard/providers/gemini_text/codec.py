"""Pure codec for Gemini REST ``streamGenerateContent?alt=sse`` (no I/O).

Two halves:

* :func:`request_body` turns provider-neutral :class:`ChatMessage` history into a
  ``GenerateContentRequest`` body
  (ai.google.dev/api/generate-content#method:-models.streamgeneratecontent).
* :class:`StreamDecoder` turns the SSE byte stream into :class:`LLMEvent` objects.

Roles (checked against google-genai 3.6.1, which wins over older doc pages): the history uses
``user`` and ``model``; the model's function calls are ``functionCall`` parts in a ``model``
turn, and function results are ``functionResponse`` parts sent with role **``user``** (the SDK's
automatic-function-calling loop and the docs' examples both do so; the older ``function`` role is
not used). Consecutive tool results are merged into one ``user`` turn, as parallel calls require.

Theory of operation of :class:`StreamDecoder`: SSE events are separated by a blank line
(``\\r\\n\\r\\n`` from Google's servers or ``\\n\\n``; both accepted); each ``data:`` payload is one
``GenerateContentResponse`` JSON. Text parts become :class:`LLMTextDelta`, ``functionCall`` parts
:class:`LLMFunctionCall` (with a generated ``call_sb_…`` id when the service sent none), and the
last ``usageMetadata``/``finishReason`` seen make the final :class:`LLMDone`. There is no
``[DONE]`` sentinel: the stream ends at EOF.

Thinking models (``gemini-2.5-pro``, ``gemini-2.5-flash``; ``docs/wire/gemini.md#thinking-models``,
google-genai ``types.Part.thought`` / ``thought_signature``):

* a part with ``"thought": true`` is a thought summary (sent only when ``includeThoughts`` is
  asked for): it is counted in :attr:`StreamDecoder.thought_chars`, never spoken;
* a ``thoughtSignature`` on a ``functionCall`` part is an opaque token the service wants back
  "exactly as received" with that call in the next request (Gemini 3 rejects a function-call
  history without it); it travels in :attr:`LLMFunctionCall.signature` and :func:`request_body`
  puts it back on the part. A signature on a text part (optional to return) is dropped;
* ``usageMetadata.thoughtsTokenCount`` is billed as output, so :class:`LLMDone` adds it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from switchboard.errors import ProviderError, RemoteProtocolError
from switchboard.providers.gemini_text.schema import function_declarations
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
)

__all__ = ["GENERATED_ID_PREFIX", "SseDecoder", "StreamDecoder", "request_body"]

#: Prefix of call ids we invent when the REST response carries no ``functionCall.id``; such ids
#: are never sent back on the wire (the service would not know them).
GENERATED_ID_PREFIX = "call_sb_"


def _tool_response(content: str) -> dict[str, Any]:
    """A function result as the JSON object ``functionResponse.response`` must be."""
    try:
        value = json.loads(content) if content else {}
    except json.JSONDecodeError:
        return {"result": content}
    return value if isinstance(value, dict) else {"result": value}


def _with_id(body: dict[str, Any], call_id: str | None) -> dict[str, Any]:
    if call_id and not call_id.startswith(GENERATED_ID_PREFIX):
        return {"id": call_id, **body}
    return body


def _contents(history: list[ChatMessage]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for msg in history:
        match msg.role:
            case "user":
                contents.append({"role": "user", "parts": [{"text": msg.content}]})
            case "assistant":
                parts: list[dict[str, Any]] = [{"text": msg.content}] if msg.content else []
                for call in msg.tool_calls:
                    names[call.call_id] = call.name
                    fc = {"name": call.name, "args": dict(call.arguments)}
                    part: dict[str, Any] = {"functionCall": _with_id(fc, call.call_id)}
                    if call.signature:
                        part["thoughtSignature"] = call.signature
                    parts.append(part)
                if parts:
                    contents.append({"role": "model", "parts": parts})
            case "tool":
                name = msg.name or names.get(msg.tool_call_id or "", "")
                fr = {"name": name, "response": _tool_response(msg.content)}
                result = {"functionResponse": _with_id(fr, msg.tool_call_id)}
                last = contents[-1] if contents else None
                if last and last["role"] == "user" and "functionResponse" in last["parts"][-1]:
                    last["parts"].append(result)
                else:
                    contents.append({"role": "user", "parts": [result]})
    return contents


def request_body(
    *,
    system_prompt: str | None,
    history: list[ChatMessage],
    tools: list[dict[str, Any]],
    temperature: float | None = None,
    thinking_budget: int | None = None,
    include_thoughts: bool = False,
    response_json_schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a ``streamGenerateContent`` request.

    Args:
        system_prompt: becomes ``systemInstruction`` (omitted when empty).
        history: the conversation so far, oldest first.
        tools: flat seed function tools (``{"type","name","description","parameters"}``).
        temperature: ``generationConfig.temperature`` when given.
        thinking_budget: ``generationConfig.thinkingConfig.thinkingBudget`` when given (thinking
            models only; ``gemini-2.5-pro`` takes 128..32768 and refuses 0).
        include_thoughts: ask for thought summaries (``thinkingConfig.includeThoughts``).
        response_json_schema: structured output: the answer is JSON valid against this JSON
            Schema (``responseMimeType: application/json`` + ``responseJsonSchema``;
            ai.google.dev/gemini-api/docs/structured-output).
    """
    body: dict[str, Any] = {"contents": _contents(history)}
    if system_prompt:
        body["systemInstruction"] = {"role": "user", "parts": [{"text": system_prompt}]}
    declared = function_declarations([t.get("function", t) for t in tools])
    if declared:
        body["tools"] = declared
        body["toolConfig"] = {"functionCallingConfig": {"mode": "AUTO"}}
    generation: dict[str, Any] = {}
    if temperature is not None:
        generation["temperature"] = temperature
    thinking: dict[str, Any] = {}
    if thinking_budget is not None:
        thinking["thinkingBudget"] = thinking_budget
    if include_thoughts:
        thinking["includeThoughts"] = True
    if thinking:
        generation["thinkingConfig"] = thinking
    if response_json_schema is not None:
        generation["responseMimeType"] = "application/json"
        generation["responseJsonSchema"] = dict(response_json_schema)
    if generation:
        body["generationConfig"] = generation
    return body


class SseDecoder:
    """Split a server-sent-events text stream into ``data`` payloads (pure, incremental)."""

    def __init__(self) -> None:
        self._buf = ""

    def feed(self, text: str) -> list[str]:
        """Add text; return the data payloads of the events it completed."""
        self._buf += text.replace("\r\n", "\n")
        out: list[str] = []
        while "\n\n" in self._buf:
            block, self._buf = self._buf.split("\n\n", 1)
            out.extend(self._data(block))
        return out

    def close(self) -> list[str]:
        """Payload of a last event not followed by a blank line (EOF ends it)."""
        block, self._buf = self._buf, ""
        return self._data(block) if block.strip() else []

    @staticmethod
    def _data(block: str) -> list[str]:
        lines = [ln[5:].lstrip(" ") for ln in block.split("\n") if ln.startswith("data:")]
        return ["\n".join(lines)] if lines else []


class StreamDecoder:
    """SSE text → :class:`LLMEvent` objects for one ``streamGenerateContent`` response."""

    def __init__(self) -> None:
        self._sse = SseDecoder()
        self._usage: Mapping[str, Any] = {}
        self._finish: str | None = None
        #: Characters of thought summaries seen (never spoken).
        self.thought_chars = 0

    def feed(self, text: str) -> list[LLMEvent]:
        """Decode more of the body.

        Raises:
            RemoteProtocolError: a chunk is not valid JSON or not a response object.
            ProviderError: the stream carried an ``error`` object.
        """
        return [ev for payload in self._sse.feed(text) for ev in self._chunk(payload)]

    def finish(self) -> list[LLMEvent]:
        """Events for the end of the stream: any unterminated chunk, then :class:`LLMDone`."""
        events = [ev for payload in self._sse.close() for ev in self._chunk(payload)]
        usage = self._usage
        try:
            output = int(usage.get("candidatesTokenCount", 0)) + int(
                usage.get("thoughtsTokenCount", 0)
            )
            prompt = int(usage.get("promptTokenCount", 0))
        except (TypeError, ValueError, OverflowError) as exc:  # "promptTokenCount": Infinity
            raise RemoteProtocolError(f"malformed Gemini usageMetadata: {exc!r}") from exc
        events.append(
            LLMDone(input_tokens=prompt, output_tokens=output, finish_reason=self._finish)
        )
        return events

    def _chunk(self, payload: str) -> list[LLMEvent]:
        try:
            chunk = json.loads(payload)
        except (json.JSONDecodeError, RecursionError) as exc:  # nested 10 000 deep
            raise RemoteProtocolError(f"Gemini stream chunk is not JSON: {exc}") from exc
        if not isinstance(chunk, dict):
            raise RemoteProtocolError("Gemini stream chunk is not a JSON object")
        if isinstance(chunk.get("error"), dict):
            err = chunk["error"]
            raise ProviderError(
                f"Gemini error {err.get('code')}: {err.get('message', '')}",
                code=str(err.get("status") or err.get("code")),
            )
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage = chunk["usageMetadata"]
        events: list[LLMEvent] = []
        try:
            for cand in chunk.get("candidates") or []:
                if cand.get("finishReason"):
                    self._finish = str(cand["finishReason"])
                for part in (cand.get("content") or {}).get("parts") or []:
                    events.extend(self._part(part))
                break  # candidateCount is 1; further candidates are ignored
        except (AttributeError, TypeError, ValueError) as exc:  # a field of the wrong JSON type
            raise RemoteProtocolError(f"malformed Gemini stream chunk: {exc!r}") from exc
        return events

    def _part(self, part: Mapping[str, Any]) -> list[LLMEvent]:
        if part.get("thought"):  # a thought summary: the model's reasoning, not its answer
            self.thought_chars += len(str(part.get("text") or ""))
            return []
        if "functionCall" in part:
            fc = part["functionCall"]
            call_id = fc.get("id") or f"{GENERATED_ID_PREFIX}{uuid.uuid4().hex[:16]}"
            args = fc.get("args") or {}
            signature = part.get("thoughtSignature") or part.get("thought_signature")
            return [
                LLMFunctionCall(
                    call_id=str(call_id),
                    name=str(fc.get("name", "")),
                    arguments=dict(args),
                    signature=str(signature) if signature else None,
                )
            ]
        if part.get("text"):
            return [LLMTextDelta(str(part["text"]))]
        return []
