"""Gemini text LLM over REST ``streamGenerateContent?alt=sse`` (implements ``TextLLM``).

Used by the segmented pipeline (Deepgram STT → Gemini → Deepgram TTS). The request and stream
decoding live in :mod:`.codec`; this module only does HTTP with an injectable
``httpx.AsyncClient`` (so tests point it at the emulator).

Reference: ai.google.dev/api/generate-content#method:-models.streamgeneratecontent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from switchboard.config import Settings
from switchboard.errors import ConfigError, ProviderError, RemoteProtocolError
from switchboard.media import Usage
from switchboard.providers.gemini_text.codec import StreamDecoder, request_body
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
)

__all__ = ["GeminiTextLLM"]

logger = logging.getLogger(__name__)

API_VERSION = "v1beta"


def _error_message(status: int, body: bytes) -> tuple[str, str]:
    """(message, code) from Google's error JSON ``{"error": {"code", "message", "status"}}``."""
    try:
        err = json.loads(body)["error"]
        return str(err.get("message", "")), str(err.get("status") or status)
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace"), str(status)


class GeminiTextLLM:
    """A streaming Gemini chat model with function calling.

    Args:
        settings: supplies ``gemini_api_key`` (sent as ``x-goog-api-key``) and ``gemini_base_url``.
        model: model id, e.g. ``gemini-2.5-flash`` or ``gemini-2.5-pro`` (a generateContent model:
            Live models are refused there).
        client: an ``httpx.AsyncClient`` to use (not closed by :meth:`aclose`); one is created
            (and owned) when omitted.
        thinking_budget: ``thinkingConfig.thinkingBudget`` for thinking models (None: the
            model's default; ``gemini-2.5-pro`` takes 128..32768 — it cannot stop thinking).
        include_thoughts: ask for thought summaries; they are counted and logged by size at
            DEBUG, never spoken.

    Raises:
        ConfigError: ``GEMINI_API_KEY`` is not set.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        model: str = "gemini-2.5-flash",
        client: httpx.AsyncClient | None = None,
        thinking_budget: int | None = None,
        include_thoughts: bool = False,
    ) -> None:
        key = settings.secret("gemini_api_key")
        if not key:
            raise ConfigError("Gemini text LLM needs GEMINI_API_KEY", missing=("GEMINI_API_KEY",))
        self._key = key
        self.model = model.removeprefix("models/")
        self._url = (
            f"{settings.gemini_base_url}/{API_VERSION}/models/{self.model}"
            ":streamGenerateContent?alt=sse"
        )
        self.thinking_budget = thinking_budget
        self.include_thoughts = include_thoughts
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=60.0))

    async def stream(
        self,
        *,
        system_prompt: str | None,
        history: list[ChatMessage],
        tools: list[dict[str, Any]],
        temperature: float | None = None,
        response_json_schema: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[LLMEvent]:
        """Generate the next assistant turn as text deltas, function calls, then ``LLMDone``.

        Cancelling the consuming task closes the HTTP stream at once. ``response_json_schema``
        asks for structured output (see :meth:`generate_json`).

        Raises:
            ProviderError: HTTP error status (with the status and Google's message), transport
                failure, or an error object inside the stream.
            RemoteProtocolError: a malformed stream chunk.
        """
        body = request_body(
            system_prompt=system_prompt,
            history=history,
            tools=tools,
            temperature=temperature,
            thinking_budget=self.thinking_budget,
            include_thoughts=self.include_thoughts,
            response_json_schema=response_json_schema,
        )
        headers = {"x-goog-api-key": self._key, "Content-Type": "application/json"}
        decoder = StreamDecoder()
        logger.debug("> streamGenerateContent model=%s contents=%d", self.model, len(history))
        try:
            async with self._client.stream("POST", self._url, json=body, headers=headers) as resp:
                if resp.status_code >= 400:
                    message, code = _error_message(resp.status_code, await resp.aread())
                    raise ProviderError(
                        f"Gemini HTTP {resp.status_code}: {message}", code=code, fatal=False
                    )
                async for text in resp.aiter_text():
                    for event in decoder.feed(text):
                        yield event
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"Gemini request failed: {type(exc).__name__}", fatal=False
            ) from exc
        for event in decoder.finish():
            yield event
        if decoder.thought_chars:
            logger.debug("< thought summaries model=%s chars=%d", self.model, decoder.thought_chars)

    async def generate_json(
        self,
        *,
        system_prompt: str,
        prompt: str,
        schema: Mapping[str, Any],
        temperature: float | None = 0.0,
    ) -> tuple[str, Usage]:
        """One structured-output answer: JSON text the service constrained to ``schema``
        (the caller still validates it), and the tokens it cost.

        Raises:
            ProviderError: as :meth:`stream`, or the answer was cut off (``MAX_TOKENS``...).
            RemoteProtocolError: a malformed stream, or a function call instead of text.
        """
        parts: list[str] = []
        done: LLMDone | None = None
        history = [ChatMessage("user", prompt)]
        async for event in self.stream(
            system_prompt=system_prompt,
            history=history,
            tools=[],
            temperature=temperature,
            response_json_schema=schema,
        ):
            match event:
                case LLMTextDelta(text=text):
                    parts.append(text)
                case LLMDone():
                    done = event
                case LLMFunctionCall():
                    raise RemoteProtocolError("Gemini answered a JSON request with a call")
        if done is not None and done.finish_reason not in (None, "STOP"):
            raise ProviderError(f"Gemini stopped early: {done.finish_reason}", fatal=False)
        usage = Usage(
            input_text_tokens=done.input_tokens if done else 0,
            output_text_tokens=done.output_tokens if done else 0,
        )
        return "".join(parts), usage

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()
