"""Emulated OpenAI ``POST /v1/chat/completions`` (pure core, plain dicts, non-streaming).

Written from the API reference (platform.openai.com/docs/api-reference/chat/create and
docs/guides/structured-outputs), never from the client's codec. It checks what the service
checks and answers what it answers:

* ``Authorization: Bearer <key>`` — none: 401 ``"You didn't provide an API key…"``; a wrong
  one: 401 ``invalid_api_key``;
* the body: an object with ``model`` and a non-empty ``messages`` list; an unknown top-level
  key: 400 ``"Unrecognized request argument supplied: <key>"``; a message role outside
  system/developer/user/assistant/tool: 400 (``param: messages.[i].role``);
* ``model``: a realtime model: 404 ``"This is not a chat model and thus not supported in the
  v1/chat/completions endpoint…"``; an unknown one: 404 ``model_not_found``;
* ``response_format``: ``text``, ``json_object`` or ``json_schema``; the last needs
  ``json_schema.name`` (``^[a-zA-Z0-9_-]{1,64}$``) and an object ``schema``; with ``strict:
  true`` every object must set ``additionalProperties: false`` and require every property
  (400 ``"Invalid schema for response_format …"``; the wording is UNCONFIRMED).

The answer is the next scripted turn's ``say``; for ``json_schema`` it is that ``say`` when it
is JSON, else an instance of the schema (:func:`~switchboard.emulators.schema_fill.fill`), as
structured outputs constrain the model. ``stream: true`` is refused (not emulated) and recorded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.emulators.common import Script
from switchboard.emulators.schema_fill import fill

__all__ = ["CHAT_MODELS", "ChatCore", "ChatReply", "openai_error"]

#: Models this endpoint serves (the emulator's list; the real one is longer and changes).
CHAT_MODELS = frozenset(
    {
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
    }
)
_REALTIME = re.compile(r"^gpt-(4o-)?(mini-)?realtime")
_BODY_KEYS = {
    "model", "messages", "response_format", "temperature", "top_p", "max_tokens",
    "max_completion_tokens", "n", "stop", "seed", "user", "metadata", "store", "tools",
    "tool_choice", "parallel_tool_calls", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "stream", "stream_options", "reasoning_effort",
    "service_tier", "modalities", "audio", "prediction", "verbosity", "web_search_options",
    "safety_identifier", "prompt_cache_key",
}  # fmt: skip
_ROLES = {"system", "developer", "user", "assistant", "tool"}
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def openai_error(
    message: str, *, kind: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(slots=True)
class ChatReply:
    """What to answer: ``status`` and a JSON ``body`` (a completion or an error)."""

    status: int
    body: dict[str, Any]


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.reply = ChatReply(status, body)


def _invalid(message: str, param: str | None = None) -> _Refused:
    return _Refused(
        400, openai_error(message, kind="invalid_request_error", code=None, param=param)
    )


def _strict_problems(schema: Mapping[str, Any], path: str = "schema") -> list[str]:
    problems: list[str] = []
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            problems.append(
                f"{path}: 'additionalProperties' is required to be supplied and to be false"
            )
        missing = sorted(set(props) - set(schema.get("required") or []))
        if missing:
            problems.append(
                f"{path}: 'required' is required to include every key; missing {missing}"
            )
        for key, sub in props.items():
            if isinstance(sub, Mapping):
                problems += _strict_problems(sub, f"{path}.properties.{key}")
    items = schema.get("items")
    if isinstance(items, Mapping):
        problems += _strict_problems(items, f"{path}.items")
    return problems


@dataclass(slots=True)
class ChatCore:
    """Checks requests and answers them from a script.

    Attributes:
        requests: every accepted request body, in order.
        violations: what a client did that the real service would not accept.
    """

    script: Script
    api_key: str | None = None
    models: Collection[str] = CHAT_MODELS
    requests: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    _completions: int = 0

    def handle(self, *, authorization: str | None, raw: bytes) -> ChatReply:
        """Answer one POST."""
        try:
            self._auth(authorization)
            body = self._parse(raw)
            self._check_model(str(body["model"]))
            schema = self._response_schema(body.get("response_format"))
        except _Refused as refused:
            return refused.reply
        self.requests.append(body)
        return ChatReply(200, self._complete(body, schema))

    def _auth(self, authorization: str | None) -> None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not authorization or not token:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            raise _Refused(401, openai_error(message, kind="invalid_request_error", code=None))
        if self.api_key is not None and token != self.api_key:
            message = "Incorrect API key provided."
            raise _Refused(
                401, openai_error(message, kind="invalid_request_error", code="invalid_api_key")
            )

    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise _invalid("We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise _invalid("We could not parse the JSON body of your request.")
        for key in body:
            if key not in _BODY_KEYS:
                raise _invalid(f"Unrecognized request argument supplied: {key}")
        if "model" not in body:
            raise _invalid("you must provide a model parameter")
        if body.get("stream"):
            self.violations.append("stream: true is not emulated")
            raise _invalid("stream: true is not emulated", "stream")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _invalid("[] is too short - 'messages'", "messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in _ROLES:
                raise _invalid(f"Invalid value for 'messages[{i}].role'", f"messages.[{i}].role")
            if message["role"] != "assistant" and "content" not in message:
                raise _invalid(
                    f"Missing required parameter: 'messages[{i}].content'.",
                    f"messages.[{i}].content",
                )
        return body

    def _check_model(self, model: str) -> None:
        if _REALTIME.match(model):
            message = (
                "This is not a chat model and thus not supported in the v1/chat/completions "
                "endpoint. Did you mean to use v1/completions?"
            )
            raise _Refused(
                404, openai_error(message, kind="invalid_request_error", code=None, param="model")
            )
        if model not in self.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            raise _Refused(
                404, openai_error(message, kind="invalid_request_error", code="model_not_found")
            )

    def _response_schema(self, response_format: Any) -> Mapping[str, Any] | None:
        if response_format is None:
            return None
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind in ("text", "json_object"):
            return None
        if kind != "json_schema":
            raise _invalid(
                f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
                "'json_schema'.",
                "response_format.type",
            )
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not _NAME.match(str(spec.get("name", ""))):
            raise _invalid(
                "Invalid 'response_format.json_schema.name'", "response_format.json_schema.name"
            )
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise _invalid(
                "Invalid 'response_format.json_schema.schema': expected an object",
                "response_format.json_schema.schema",
            )
        if spec.get("strict"):
            problems = _strict_problems(schema)
            if problems:
                raise _invalid(
                    f"Invalid schema for response_format '{spec['name']}': {problems[0]}",
                    "response_format",
                )
        return schema

    def _complete(self, body: dict[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        say = self.script.next_turn().say
        if schema is not None:
            try:
                json.loads(say)
            except ValueError:
                say = json.dumps(fill(schema))
        self._completions += 1
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4 + 1
        completion_tokens = max(1, len(say) // 4)
        return {
            "id": f"chatcmpl-emu{self._completions:06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": say,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }
