"""HTTP tools as agents.yaml declares them: :class:`HttpToolConfig` and its ``http:`` block.

::

    tools:
      - end_call                                  # a Python tool, by name
      - name: lookup_order                        # an HTTP tool
        description: Find an order by its number
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        http:
          url: "https://api.example.com/voice/lookup?shop={{shop_id}}"
          timeout_s: 5
          headers: {X-Api-Key: "${MYCO_KEY}"}

``${VAR}`` in ``url`` and header values is replaced from the environment once, when the file is
loaded (:meth:`AgentBook.load <switchboard.agents.AgentBook.load>` passes it as the validation
context ``{"environ": ...}``); an unset variable is a :class:`ConfigError` naming it. The
expanded values are kept out of every repr, dump, log line and error: what is shown is
:attr:`HttpEndpoint.url` as written (with its ``${VAR}`` and without its query). ``{{name}}``
is replaced per call from the call's variables (percent-encoded in the URL).

``parameters`` is a JSON schema (``type: object``), checked when loaded; the model's arguments
are validated against it before any request is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

__all__ = ["ENVIRON_CONTEXT", "RESERVED_HEADERS", "HttpEndpoint", "HttpToolConfig"]

#: The validation-context key holding the environment ``${VAR}`` expands from.
ENVIRON_CONTEXT = "environ"
#: Headers switchboard sets itself (the signature and the body's framing).
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "webhook-id", "webhook-timestamp"}
    | {"webhook-signature", "transfer-encoding", "connection"}
)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}")


def _expand(text: str, environ: Mapping[str, str], where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = environ.get(name)
        if found is None or found == "":
            raise ValueError(f"{where}: ${{{name}}} is not set in the environment")
        return found

    return _ENV_REF.sub(value, text)


class HttpEndpoint(BaseModel):
    """The ``http:`` block of an HTTP tool.

    Attributes:
        url: the URL as written (``${VAR}`` unexpanded); an ``http(s)`` URL once expanded.
        timeout_s: the whole request's time limit (connect, send, answer).
        headers: extra request headers as written (values may hold ``${VAR}`` and ``{{name}}``).
        max_response_bytes: the largest answer read; a larger one is an error result.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1, max_length=2048)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    headers: dict[str, str] = Field(default_factory=dict)
    max_response_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    _url: str = PrivateAttr(default="")
    _headers: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> HttpEndpoint:
        context = info.context if isinstance(info.context, Mapping) else {}
        environ: Mapping[str, str] = context.get(ENVIRON_CONTEXT) or {}
        url = _expand(self.url, environ, "url")
        try:  # placeholders stand in for the per-call values the URL will hold
            parsed = httpx.URL(_PLACEHOLDER.sub("x", url))
        except (httpx.InvalidURL, ValueError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("url must be an http:// or https:// URL with a host")  # no echo
        headers: dict[str, str] = {}
        for name, raw in self.headers.items():
            if not _TOKEN.match(name):
                raise ValueError(f"headers: {name[:64]!r} is not a valid header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"headers: {name} is set by switchboard")
            value = _expand(raw, environ, f"headers.{name}")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"headers.{name}: a header value cannot hold a line break")
            headers[name] = value
        self._url = url
        self._headers = headers
        return self

    @property
    def resolved_url(self) -> str:
        """The URL with ``${VAR}`` expanded (secret: never log or show it)."""
        return self._url

    @property
    def resolved_headers(self) -> dict[str, str]:
        """The headers with ``${VAR}`` expanded (secret: never log or show them)."""
        return dict(self._headers)

    def __repr_args__(self) -> Any:
        # headers as written may be literal keys: show their names only
        return [("url", self.url), ("timeout_s", self.timeout_s), ("headers", list(self.headers))]


class HttpToolConfig(BaseModel):
    """One HTTP tool of an agent (see the module docstring).

    Attributes:
        name: the function name the model calls.
        description: what the model is told the tool does.
        parameters: the JSON schema of its arguments (``type: object``).
        http: where and how the request goes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = Field(min_length=1, max_length=1024)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    http: HttpEndpoint

    @model_validator(mode="after")
    def _schema(self) -> HttpToolConfig:
        if self.parameters.get("type") != "object":
            raise ValueError("parameters must be a JSON schema with type: object")
        try:
            Draft202012Validator.check_schema(self.parameters)
        except SchemaError as exc:
            raise ValueError(f"parameters is not a valid JSON schema: {exc.message}") from None
        return self

    def function_schema(self) -> dict[str, Any]:
        """The flat function shape the providers are given."""
        parameters = dict(self.parameters)
        parameters.setdefault("properties", {})
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": parameters,
        }
