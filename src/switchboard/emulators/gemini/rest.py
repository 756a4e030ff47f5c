"""Emulated Gemini REST ``models/{model}:streamGenerateContent?alt=sse`` (pure core, plain dicts).

Written from ``docs/wire/gemini.md#rest-streamgeneratecontent`` only (vendor page:
https://ai.google.dev/api/generate-content; never from the client's codec). One request is one
model turn, scripted:

* the last content is a ``user`` text turn → the script's next turn: its ``tool`` becomes a
  ``functionCall`` part (id ``fc_<n>`` unless ``call_ids=False``), otherwise its ``say`` is
  streamed as several text chunks;
* the last content carries ``functionResponse`` parts → the ``say`` of the turn that made the
  call (matched by id, or by name when ids are off);
* ``generationConfig.responseMimeType: application/json`` (structured output) → the next turn's
  ``say`` when it is JSON, else an instance of ``responseJsonSchema``/``responseSchema``
  (:mod:`..schema_fill`); a schema without the JSON MIME type is refused with 400.

Each chunk is a ``GenerateContentResponse``; the last adds ``finishReason: STOP`` and
``usageMetadata``. Bad requests get Google's error JSON
``{"error": {"code", "message", "status"}}`` with 400 (bad body, or API key not valid — what
Google answers for a wrong key), 401 (no key; Google says 403 PERMISSION_DENIED for unregistered
callers — UNCONFIRMED, kept 401 as the brief asks) or 404 (a model that does not exist or does
not serve generateContent, Live models included: :mod:`.models`).

Thinking models (:data:`~.models.THINKING`): ``thinkingConfig.thinkingBudget`` is checked (400
for a budget the model refuses); ``includeThoughts`` puts a thought-summary part
(``"thought": true``) before the answer; a scripted function call carries a ``thoughtSignature``,
and a later request whose history holds that call without its signature is recorded as a
violation (the docs ask for it "exactly as received"); ``usageMetadata.thoughtsTokenCount``
reports the thinking.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.emulators.common import Script, ScriptedTurn
from switchboard.emulators.gemini.models import (
    THINKING,
    not_supported,
    serves,
    thinking_error,
    thought_signature,
)
from switchboard.emulators.schema_fill import fill

__all__ = ["RestCore", "RestReply", "google_error"]

_BODY_KEYS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "labels",
}
_PART_KEYS = {
    "text",
    "inlineData",
    "functionCall",
    "functionResponse",
    "fileData",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def get(obj: Mapping[str, Any], camel: str, default: Any = None) -> Any:
    """``obj[camel]`` or its snake_case spelling (proto3 JSON accepts both)."""
    if camel in obj:
        return obj[camel]
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
    return obj.get(snake, default)


def _response_schema(generation: Mapping[str, Any]) -> Mapping[str, Any] | None:
    schema = get(generation, "responseJsonSchema")
    if schema is None:
        schema = get(generation, "responseSchema")
    return schema if isinstance(schema, Mapping) else None


def _structured_output_error(generation: Mapping[str, Any]) -> str | None:
    """Why a structured-output request is refused (400), or None.

    The service takes ``responseJsonSchema`` (JSON Schema) or ``responseSchema`` (its OpenAPI
    subset), not both, and only with ``responseMimeType: application/json``
    (ai.google.dev/gemini-api/docs/structured-output; the wording is UNCONFIRMED).
    """
    json_schema = get(generation, "responseJsonSchema")
    schema = get(generation, "responseSchema")
    if json_schema is not None and schema is not None:
        return "responseSchema and responseJsonSchema cannot both be set."
    chosen = json_schema if json_schema is not None else schema
    if chosen is None:
        return None
    if not isinstance(chosen, Mapping):
        return "* GenerationConfig.response_json_schema: must be a JSON object"
    if get(generation, "responseMimeType") != "application/json":
        return "response_mime_type must be application/json when a response schema is set."
    return None


def _json_answer(say: str, schema: Mapping[str, Any] | None) -> str:
    """The scripted ``say`` when it is JSON; else an instance of ``schema`` (structured output)."""
    try:
        json.loads(say)
    except ValueError:
        return json.dumps(fill(schema) if schema is not None else {})
    return say


def google_error(code: int, message: str) -> dict[str, Any]:
    """Google's standard error body."""
    return {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}


@dataclass(slots=True)
class RestReply:
    """What to answer: an error (``status`` ≥ 400 and ``error``) or SSE ``chunks``."""

    status: int = 200
    chunks: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None


class _BadRequest(Exception):
    pass


class RestCore:
    """Scripted ``streamGenerateContent`` answers and request checks.

    Attributes:
        requests: every accepted request body, in order.
        violations: protocol problems a real service would reject or a client should not do.
    """

    def __init__(
        self,
        *,
        script: Script,
        api_key: str | None = None,
        models: Collection[str] | None = None,
        call_ids: bool = True,
        words_per_chunk: int = 3,
    ) -> None:
        self.script = script
        self.api_key = api_key
        self.models = set(models) if models is not None else None
        self.call_ids = call_ids
        self.words_per_chunk = max(1, words_per_chunk)
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self._pending: dict[str, ScriptedTurn] = {}
        self._signatures: dict[str, str] = {}  # call id (or name) -> the signature it came with
        self._calls = 0
        self._responses = 0
        #: Thought-summary parts sent (for tests that check they were not spoken).
        self.thoughts_sent: list[str] = []
        #: The model of each accepted request, in order (parallel to :attr:`requests`).
        self.request_models: list[str] = []

    def handle(
        self, *, model: str, method: str, key: str | None, raw: bytes, version: str = "v1beta"
    ) -> RestReply:
        """Answer one POST to ``{version}/models/{model}:{method}``."""
        if not key:
            return RestReply(401, error=google_error(401, "Request is missing an API key."))
        if self.api_key is not None and key != self.api_key:
            msg = "API key not valid. Please pass a valid API key."
            return RestReply(400, error=google_error(400, msg))
        if method != "streamGenerateContent":
            return RestReply(404, error=google_error(404, f"Method {method} is not emulated."))
        if not serves(model, method, self.models):
            return RestReply(404, error=google_error(404, not_supported(model, method, version)))
        try:
            body = self._parse(raw)
        except _BadRequest as exc:
            return RestReply(400, error=google_error(400, str(exc)))
        thinking = get(get(body, "generationConfig") or {}, "thinkingConfig") or {}
        refused = thinking_error(model, thinking)
        if refused is not None:
            return RestReply(400, error=google_error(400, refused))
        refused = _structured_output_error(get(body, "generationConfig") or {})
        if refused is not None:
            return RestReply(400, error=google_error(400, refused))
        self.requests.append(body)
        self.request_models.append(model)
        self._check_signatures(body)
        chunks = self._answer(model, body)
        if model in THINKING:
            self._think(model, chunks, bool(get(thinking, "includeThoughts")))
        return RestReply(200, chunks=chunks)

    # -- validation ----------------------------------------------------------------------------
    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            raise _BadRequest("Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise _BadRequest("Invalid JSON payload received. Expected an object.")
        for key in body:
            if _camel(key) not in _BODY_KEYS:
                raise _BadRequest(
                    f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                )
        contents = get(body, "contents")
        if not isinstance(contents, list) or not contents:
            raise _BadRequest("* GenerateContentRequest.contents: contents is not specified")
        for content in contents:
            if get(content, "role", "user") not in ("user", "model"):
                raise _BadRequest("Please use a valid role: user, model.")
            parts = get(content, "parts")
            if not isinstance(parts, list) or not parts:
                raise _BadRequest(
                    "* GenerateContentRequest.contents.parts: contents.parts must not be empty."
                )
            for part in parts:
                unknown = {_camel(k) for k in part} - _PART_KEYS
                if unknown:
                    raise _BadRequest(
                        "Invalid JSON payload received. Unknown name "
                        f"\"{unknown.pop()}\" at 'contents.parts': Cannot find field."
                    )
                fr = get(part, "functionResponse")
                if fr is not None and not isinstance(fr.get("response"), dict):
                    raise _BadRequest("* functionResponse.response must be a JSON object")
        return body

    # -- thinking ------------------------------------------------------------------------------
    def _check_signatures(self, body: dict[str, Any]) -> None:
        for content in get(body, "contents"):
            for part in get(content, "parts"):
                call = get(part, "functionCall")
                if call is None:
                    continue
                wanted = self._signatures.get(str(call.get("id") or call.get("name")))
                if wanted is not None and get(part, "thoughtSignature") != wanted:
                    self.violations.append(
                        f"functionCall {call.get('name')!r} came back without its thoughtSignature"
                    )

    def _think(self, model: str, chunks: list[dict[str, Any]], include_thoughts: bool) -> None:
        """Make a thinking model's answer look like one: signature, summary, thought tokens."""
        for chunk in chunks:
            for part in chunk["candidates"][0]["content"]["parts"]:
                call = part.get("functionCall")
                if call is not None:
                    signature = thought_signature(model, call["name"], self._calls)
                    part["thoughtSignature"] = signature
                    self._signatures[str(call.get("id") or call["name"])] = signature
        if include_thoughts:
            summary = "**Choosing a reply**\nThe caller needs a short, spoken answer."
            self.thoughts_sent.append(summary)
            thought = self._chunk(model, {"text": summary, "thought": True})
            thought["responseId"] = chunks[0]["responseId"]  # the same response, streamed first
            chunks.insert(0, thought)
        usage = chunks[-1].get("usageMetadata")
        if usage is not None:
            usage["thoughtsTokenCount"] = 24
            usage["totalTokenCount"] += 24

    # -- script --------------------------------------------------------------------------------
    def _answer(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        last = get(body, "contents")[-1]
        responses = [get(p, "functionResponse") for p in get(last, "parts")]
        responses = [r for r in responses if r is not None]
        if responses:
            say = ""
            for resp in responses:
                turn = self._pending.pop(str(resp.get("id") or resp.get("name")), None)
                if turn is None:
                    self.violations.append(f"functionResponse for unknown call {resp!r}")
                else:
                    say = turn.say
            return self._text_chunks(model, say or "Done.")
        text = " ".join(str(get(p, "text") or "") for p in get(last, "parts"))
        by_text = self.script.turn_for_text(text) if text.strip() else None
        turn = by_text or self.script.next_turn()
        generation = get(body, "generationConfig") or {}
        if get(generation, "responseMimeType") == "application/json":
            return self._text_chunks(model, _json_answer(turn.say, _response_schema(generation)))
        if turn.tool is not None:
            declared = {
                d.get("name")
                for t in get(body, "tools", [])
                for d in get(t, "functionDeclarations", [])
            }
            if turn.tool["name"] not in declared:
                self.violations.append(f"scripted tool {turn.tool['name']!r} was not declared")
            return [self._call_chunk(model, turn)]
        return self._text_chunks(model, turn.say)

    def _call_chunk(self, model: str, turn: ScriptedTurn) -> dict[str, Any]:
        assert turn.tool is not None
        self._calls += 1
        call: dict[str, Any] = {
            "name": turn.tool["name"],
            "args": dict(turn.tool.get("arguments", {})),
        }
        if self.call_ids:
            call = {"id": f"fc_{self._calls}", **call}
        self._pending[str(call.get("id") or call["name"])] = turn
        chunk = self._chunk(model, {"functionCall": call})
        self._finish(chunk, 12)
        return chunk

    def _text_chunks(self, model: str, text: str) -> list[dict[str, Any]]:
        words = text.split(" ")
        n = self.words_per_chunk
        pieces = [" ".join(words[i : i + n]) for i in range(0, len(words), n)]
        pieces = [p + " " for p in pieces[:-1]] + pieces[-1:]
        chunks = [self._chunk(model, {"text": p}) for p in pieces]
        self._finish(chunks[-1], max(1, len(text) // 4))
        return chunks

    def _chunk(self, model: str, part: dict[str, Any]) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
            "modelVersion": model,
            "responseId": f"resp_{self._responses + 1}",
        }

    def _finish(self, chunk: dict[str, Any], output_tokens: int) -> None:
        self._responses += 1
        chunk["candidates"][0]["finishReason"] = "STOP"
        prompt = 10 * len(self.requests)
        chunk["usageMetadata"] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt + output_tokens,
        }
