"""Pure codec for OpenAI Chat Completions structured output (``POST /v1/chat/completions``).

Only what post-call analysis needs: a system and a user message in, one JSON answer out, with
``response_format: {"type": "json_schema", "json_schema": {name, schema, strict}}``
(platform.openai.com/docs/guides/structured-outputs; the request and response shapes are
checked against ``openai.types.chat`` in tests). ``strict`` is off: strict mode only takes
schemas whose every object sets ``additionalProperties: false`` and lists every property as
required, which an agent's extraction schema need not do; the answer is validated by the
caller instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from switchboard.errors import ProviderError, RemoteProtocolError
from switchboard.media import Usage

__all__ = ["error_message", "json_request", "parse_completion"]


def json_request(
    *,
    model: str,
    system_prompt: str,
    prompt: str,
    schema: Mapping[str, Any],
    name: str = "answer",
    temperature: float | None = 0.0,
) -> dict[str, Any]:
    """The request body asking ``model`` for JSON valid against ``schema``."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": prompt},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": dict(schema), "strict": False},
        },
    }
    if temperature is not None:
        body["temperature"] = temperature
    return body


def parse_completion(raw: bytes) -> tuple[str, Usage]:
    """(the answer's text, the tokens it cost) of a ``chat.completion`` body.

    Raises:
        RemoteProtocolError: not a chat completion.
        ProviderError: the model refused, or stopped before the end (``length``...).
    """
    try:
        body = json.loads(raw)
        choice = body["choices"][0]
        message = choice["message"]
        content = message.get("content")
        refusal = message.get("refusal")
        finish = choice.get("finish_reason")
        usage = body.get("usage") or {}
        tokens = Usage(
            input_text_tokens=int(usage.get("prompt_tokens", 0)),
            output_text_tokens=int(usage.get("completion_tokens", 0)),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        raise RemoteProtocolError(f"malformed chat completion: {exc!r}") from exc
    if refusal:
        raise ProviderError(f"OpenAI refused: {str(refusal)[:200]}", code="refusal", fatal=False)
    if finish not in ("stop", None):
        raise ProviderError(f"OpenAI stopped early: {finish}", code=str(finish), fatal=False)
    if not isinstance(content, str):
        raise RemoteProtocolError("chat completion without text content")
    return content, tokens


def error_message(status: int, raw: bytes) -> tuple[str, str]:
    """(message, code) of OpenAI's error JSON ``{"error": {"message", "type", "code"}}``."""
    try:
        err = json.loads(raw)["error"]
        return str(err.get("message", "")), str(err.get("code") or err.get("type") or status)
    except (ValueError, KeyError, TypeError, RecursionError):
        return raw[:200].decode("utf-8", "replace"), str(status)
