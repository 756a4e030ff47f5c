"""Logging setup for the CLI: JSON lines in production, readable lines on a terminal.

Library modules only ever call ``logging.getLogger(__name__)``; ``configure_logging`` is used by
``cli.py`` alone. Importing switchboard changes no logging state: the wire redaction below is
installed by :func:`configure_logging` and ``server.serve``, and an application that sets up its
own logging calls :func:`install_wire_redaction` once.

Every record logged through a call's ``LoggerAdapter`` carries ``call_id``, which both formats
print; so does every record logged from inside a call's tasks (the provider session, carrier REST
calls, tools), which run under :func:`call_context` — the call manager sets it and the handler's
:class:`CallContextFilter` copies it onto records that lack one. A redaction filter
masks anything that looks like a credential the settings hold, and credential header values, as a
last line of defence: secrets are never passed to log calls in the first place.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = [
    "CREDENTIAL_HEADERS",
    "CallContextFilter",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "call_context",
    "configure_logging",
    "current_call_id",
    "install_wire_redaction",
    "secret_values",
]

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


_CALL_ID: ContextVar[str | None] = ContextVar("switchboard_call_id", default=None)


@contextmanager
def call_context(call_id: str) -> Iterator[None]:
    """Run the block (and every task it creates) as part of call ``call_id`` for logging."""
    token = _CALL_ID.set(call_id)
    try:
        yield
    finally:
        _CALL_ID.reset(token)


def current_call_id() -> str | None:
    """The call the running code works for, if any (see :func:`call_context`)."""
    return _CALL_ID.get()


class CallContextFilter(logging.Filter):
    """Adds ``call_id`` from :func:`call_context` to records that do not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            call_id = _CALL_ID.get()
            if call_id is not None:
                record.call_id = call_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, call_id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "color_message" and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:00:01.234 INFO  switchboard.bridge [call_x] message`` for humans."""

    def format(self, record: logging.LogRecord) -> str:
        call = getattr(record, "call_id", None)
        prefix = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{prefix}.{int(record.msecs):03d} {record.levelname:<5} {record.name}"
        if call:
            line += f" [{call}]"
        line += f" {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


#: Headers whose values are credentials (websockets and httpx log handshakes at DEBUG).
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-goog-api-key", "x-api-key", "api-key", "cookie"}
)
_QUERY_TOKEN = re.compile(r"(?i)([?&](?:token|key|api_key)=)[^&\s\"']+")
_HEADER_LINE = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-goog-api-key|x-api-key|api-key|cookie)"
    r"(['\"]?\s*[:=,]\s*['\"]?)(?:(bearer|token|basic)\s+)?[^\s'\",}]+"
)


class RedactingFilter(logging.Filter):
    """Masks secrets in a formatted message: the given values, and credential header values.

    Header values are masked whatever the configured secrets: the websockets library logs every
    handshake header at DEBUG (``> Authorization: Bearer sk-…``), as httpx does for requests.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and str(args[0]).strip().lower() in CREDENTIAL_HEADERS
        ):
            record.args = (args[0], "<redacted>")
        message = record.getMessage()
        masked = _QUERY_TOKEN.sub(r"\1<redacted>", _HEADER_LINE.sub(_mask_header, message))
        for secret in self._secrets:
            masked = masked.replace(secret, "***")
        if masked != message:
            record.msg, record.args = masked, None
        return True


#: Loggers of the libraries that log credential headers (handshakes, requests) at DEBUG.
WIRE_LOGGERS = (
    "websockets.client",
    "websockets.server",
    "httpx",
    "httpcore",
    "uvicorn.access",  # logs media URLs with their per-call ``?token=``
    "uvicorn.error",
)


def install_wire_redaction() -> None:
    """Mask credential headers at the source, whoever configures logging (idempotent).

    A filter on the logger itself runs before any handler, so an application that sets up its
    own logging and turns on DEBUG still never sees a key. :func:`configure_logging` and
    ``switchboard.server.serve`` call this; an application that configures logging itself calls
    it once at start-up (nothing is installed on import). Calling it again adds nothing.
    """
    for name in WIRE_LOGGERS:
        wire = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in wire.filters):
            wire.addFilter(RedactingFilter())


def _mask_header(match: re.Match[str]) -> str:
    scheme = f"{match.group(3)} " if match.group(3) else ""
    return f"{match.group(1)}{match.group(2)}{scheme}<redacted>"


def secret_values(settings: Any) -> list[str]:
    """The plain values of every ``SecretStr`` setting, for :class:`RedactingFilter`."""
    from pydantic import SecretStr

    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
    return values


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: Any = None,
) -> None:
    """Configure the root logger.

    Args:
        level: ``"INFO"``, or per module: ``"INFO,switchboard.bridge=DEBUG,uvicorn=WARNING"``.
        fmt: ``"json"``, ``"text"``, or ``"auto"`` (text on a terminal, JSON otherwise).
        secrets: values to mask should they ever reach a message (credential header values,
            ``Authorization: Bearer …`` and the like, are always masked).
        stream: where to write (stderr by default).

    Also installs :func:`install_wire_redaction` on the libraries' wire loggers.
    """
    install_wire_redaction()
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not getattr(stream, "isatty", lambda: False)())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(CallContextFilter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    parts = [p.strip() for p in level.split(",") if p.strip()]
    root.setLevel(parts[0].upper() if parts and "=" not in parts[0] else "INFO")
    for part in parts:
        if "=" in part:
            name, _, module_level = part.partition("=")
            logging.getLogger(name.strip()).setLevel(module_level.strip().upper())
