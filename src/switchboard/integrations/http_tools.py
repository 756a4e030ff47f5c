"""HTTP tools: a model's function call sent, signed, to the user's own service.

:class:`HttpToolClient` turns an :class:`~switchboard.integrations.http_config.HttpToolConfig`
into a :class:`~switchboard.tools.registry.Tool`, so the registry validates, times and records
HTTP tools as it does Python ones. One call of the tool::

    arguments ─JSON schema (jsonschema, Draft 2020-12)─ invalid ─▶ error result, nothing sent
      │
    POST url   {"call_id", "agent", "tool", "arguments", "caller", "variables"}
      │        webhook-id / webhook-timestamp / webhook-signature (Standard Webhooks,
      │        SWITCHBOARD_WEBHOOK_SECRET), the configured headers, no redirects followed
      ├─ no answer within timeout_s ─────────────▶ error result ("no answer within 5 s")
      ├─ cannot connect ─────────────────────────▶ error result (the exception's type only)
      ├─ non-2xx ────────────────────────────────▶ error result (status, and the answer's
      │                                             "error"/"message" text if it has one)
      ├─ more than max_response_bytes, or not JSON ▶ error result
      ▼
    the JSON answer is the tool's result ({"result": <answer>} to the model)

Error results are worded for the model to talk about. No URL, header value or secret is ever
put in a result, an error or a log line: logs name the tool and the URL as written, without
its query (``${VAR}`` unexpanded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation
from pydantic import BaseModel, ConfigDict, create_model, model_validator
from pydantic_core import PydanticCustomError

from switchboard import __about__
from switchboard.errors import ToolError
from switchboard.integrations.events import redact_url
from switchboard.integrations.http_config import HttpToolConfig
from switchboard.integrations.signing import WebhookSecret, webhook_headers
from switchboard.integrations.variables import render
from switchboard.tools.context import ToolContext
from switchboard.tools.registry import Tool

__all__ = ["HttpArguments", "HttpToolClient", "arguments_model", "post_json", "read_limited"]

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: Seconds the registry's own timeout allows beyond the request's (which ends first, with the
#: clearer error).
_TIMEOUT_MARGIN_S = 1.0


def _problem(error: SchemaViolation) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


class HttpArguments(BaseModel):
    """The arguments of one HTTP tool call, checked against its JSON schema.

    Each HTTP tool gets a subclass (:func:`arguments_model`) whose :attr:`schema_validator` is
    its ``parameters``; the one field, ``payload``, holds the arguments object as the model sent
    it.
    """

    model_config = ConfigDict(extra="forbid")

    schema_validator: ClassVar[Draft202012Validator | None] = None
    payload: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        validator = cls.schema_validator
        if validator is not None:
            problems = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
            if problems:
                text = "; ".join(_problem(p) for p in problems[:5])
                raise PydanticCustomError("json_schema", "{problems}", {"problems": text})
        return {"payload": data}


def arguments_model(config: HttpToolConfig) -> type[HttpArguments]:
    """The :class:`HttpArguments` subclass checking ``config``'s arguments."""
    name = "".join(part.title() for part in re.split(r"[_-]", config.name)) + "HttpArguments"
    model = create_model(name, __base__=HttpArguments)
    model.schema_validator = Draft202012Validator(config.parameters)
    return model


async def post_json(
    transport: httpx.AsyncBaseTransport,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout_s: float,
    max_bytes: int,
    agent: str = "tools",
) -> tuple[int, bytes | None]:
    """POST ``body`` and read the answer: (status, body, or None when over ``max_bytes``).

    The request goes straight to the transport, not through an ``httpx.AsyncClient``: the
    client logs every request's full URL at INFO, and a URL here may hold a ``${VAR}`` secret.
    Redirects are not followed (a 3xx is returned as it is).

    Raises:
        TimeoutError: no whole answer within ``timeout_s``.
        httpx.HTTPError, OSError: the request could not be made.
    """
    request = httpx.Request(
        "POST",
        url,
        content=body,
        headers={
            "user-agent": f"switchboard/{__about__.__version__} ({agent})",
            "accept-encoding": "identity",  # the size limit applies to what is sent
            **headers,
        },
        extensions={"timeout": httpx.Timeout(timeout_s).as_dict()},
    )
    async with asyncio.timeout(timeout_s):
        response = await transport.handle_async_request(request)
        try:
            answer = await read_limited(response, max_bytes)
        finally:
            await response.aclose()
    return response.status_code, answer


class HttpToolClient:
    """Sends HTTP tool calls; one per app (its connection pool is shared by every call).

    Args:
        secret: the Standard Webhooks key every request is signed with.
        transport: the HTTP transport (not closed by :meth:`aclose`); one is made when omitted.
    """

    def __init__(
        self, secret: WebhookSecret, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._secret = secret
        self._owns_transport = transport is None
        self._transport = transport or httpx.AsyncHTTPTransport()

    async def aclose(self) -> None:
        """Close the HTTP transport if this object made it."""
        if self._owns_transport:
            await self._transport.aclose()

    def tool(self, config: HttpToolConfig) -> Tool:
        """The registry :class:`Tool` that calls ``config``'s endpoint."""

        async def run(arguments: dict[str, Any], context: ToolContext) -> Any:
            return await self.call(config, arguments, context)

        schema = config.function_schema()
        return Tool(
            name=config.name,
            description=config.description,
            func=run,
            arguments_model=arguments_model(config),
            parameters=schema["parameters"],
            timeout_s=config.http.timeout_s + _TIMEOUT_MARGIN_S,
            context_param="context",
            param_names={"payload": "arguments"},
        )

    async def call(
        self, config: HttpToolConfig, arguments: Mapping[str, Any], context: ToolContext
    ) -> Any:
        """POST one call of ``config`` and return its JSON answer.

        Raises:
            ToolError: no answer in time, unreachable, non-2xx, too large or not JSON (the
                message is meant for the model and holds no URL or header value).
        """
        endpoint = config.http
        variables = dict(context.variables)
        body = json.dumps(
            {
                "call_id": context.call_id,
                "agent": context.agent,
                "tool": config.name,
                "arguments": dict(arguments),
                "caller": context.caller,
                "variables": variables,
            },
            separators=(",", ":"),
        ).encode()
        url = _PLACEHOLDER.sub(
            lambda m: quote(variables.get(m.group(1), ""), safe=""), endpoint.resolved_url
        )
        headers = {}
        for name, value in endpoint.resolved_headers.items():
            text = render(value, variables).text
            if any(c in text for c in "\r\n\0"):
                raise ToolError(f"{config.name}: a variable in header {name} holds a line break")
            headers[name] = text
        headers.update(webhook_headers(self._secret, f"msg_{uuid.uuid4().hex}", body))
        shown = redact_url(endpoint.url)
        started = time.perf_counter()
        try:
            status, answer = await post_json(
                self._transport,
                url,
                body,
                headers,
                timeout_s=endpoint.timeout_s,
                max_bytes=endpoint.max_response_bytes,
            )
        except TimeoutError:
            logger.warning("http tool %s → %s: no answer in time", config.name, shown)
            raise ToolError(
                f"{config.name}: the service gave no answer within {endpoint.timeout_s:g} s"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            logger.warning("http tool %s → %s: %s", config.name, shown, type(exc).__name__)
            raise ToolError(
                f"{config.name}: the service could not be reached ({type(exc).__name__})"
            ) from None
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        logger.info("http tool %s → %s: HTTP %d in %.0f ms", config.name, shown, status, elapsed_ms)
        if answer is None:
            raise ToolError(
                f"{config.name}: the service's answer is larger than "
                f"{endpoint.max_response_bytes} bytes"
            )
        if not 200 <= status < 300:
            raise ToolError(f"{config.name}: the service answered HTTP {status}{_said(answer)}")
        if not answer.strip():
            return None
        try:
            return json.loads(answer)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ToolError(f"{config.name}: the service's answer is not JSON") from None


async def read_limited(response: httpx.Response, limit: int) -> bytes | None:
    """The whole answer, or None when it is longer than ``limit`` bytes (the rest is not read)."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) > limit:
            return None
    return bytes(kept)


def _said(answer: bytes) -> str:
    """``: <text>`` when a failed answer is a JSON object with an ``error``/``message`` text."""
    try:
        parsed = json.loads(answer)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if isinstance(parsed, dict):
        for key in ("error", "message"):
            text = parsed.get(key)
            if isinstance(text, str) and text.strip():
                return f": {text.strip()[:200]}"
    return ""
