"""OpenAI Chat Completions for structured answers (post-call analysis), over httpx.

The body is built and read by :mod:`.codec`; this module only does HTTP, with an injectable
``httpx.AsyncClient`` and ``OPENAI_BASE_URL`` (tests point it at the emulator).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from switchboard.config import Settings
from switchboard.errors import ConfigError, ProviderError
from switchboard.media import Usage
from switchboard.providers.openai_chat.codec import error_message, json_request, parse_completion

__all__ = ["OpenAIChatLLM"]

logger = logging.getLogger(__name__)


class OpenAIChatLLM:
    """A Chat Completions model answering in JSON.

    Args:
        settings: supplies ``openai_api_key`` (a bearer token) and ``openai_base_url``.
        model: a chat model, e.g. ``gpt-4o-mini`` (realtime models are not served there).
        client: an ``httpx.AsyncClient`` (not closed by :meth:`aclose`); one is made when omitted.
        max_response_bytes: the largest answer read.

    Raises:
        ConfigError: ``OPENAI_API_KEY`` is not set.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        model: str = "gpt-4o-mini",
        client: httpx.AsyncClient | None = None,
        max_response_bytes: int = 1_000_000,
    ) -> None:
        key = settings.secret("openai_api_key")
        if not key:
            raise ConfigError("OpenAI chat needs OPENAI_API_KEY", missing=("OPENAI_API_KEY",))
        self._key = key
        self.model = model
        self._url = f"{settings.openai_base_url}/chat/completions"
        self._max_bytes = max_response_bytes
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=120.0))

    async def generate_json(
        self,
        *,
        system_prompt: str,
        prompt: str,
        schema: Mapping[str, Any],
        temperature: float | None = 0.0,
    ) -> tuple[str, Usage]:
        """One JSON answer to ``prompt`` shaped by ``schema`` (the caller validates it).

        Raises:
            ProviderError: an HTTP error (with OpenAI's message), a transport failure, a
                refusal, an answer cut short, or one larger than ``max_response_bytes``.
            RemoteProtocolError: a malformed completion.
        """
        body = json_request(
            model=self.model,
            system_prompt=system_prompt,
            prompt=prompt,
            schema=schema,
            name="call_analysis",
            temperature=temperature,
        )
        headers = {"authorization": f"Bearer {self._key}", "content-type": "application/json"}
        logger.debug("> chat.completions model=%s", self.model)
        try:
            async with self._client.stream("POST", self._url, json=body, headers=headers) as resp:
                raw = await self._read(resp)
        except httpx.HTTPError as exc:
            failure = f"OpenAI request failed: {type(exc).__name__}"
            raise ProviderError(failure, fatal=False) from exc
        if resp.status_code >= 400:
            message, code = error_message(resp.status_code, raw)
            failure = f"OpenAI HTTP {resp.status_code}: {message}"
            raise ProviderError(failure, code=code, fatal=False)
        return parse_completion(raw)

    async def _read(self, response: httpx.Response) -> bytes:
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > self._max_bytes:
                raise ProviderError("OpenAI answer too large", fatal=False)
        return bytes(data)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()
