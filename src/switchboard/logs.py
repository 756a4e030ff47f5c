"""Logging setup for the CLI: JSON lines in production, readable lines on a terminal.

Library modules only ever call ``logging.getLogger(__name__)``; this module is used by ``cli.py``
alone. Every record logged through a call's ``LoggerAdapter`` carries ``call_id``, which both
formats print. A redaction filter masks anything that looks like a credential the settings hold,
as a last line of defence: secrets are never passed to log calls in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

__all__ = ["JsonFormatter", "RedactingFilter", "TextFormatter", "configure_logging"]

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


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
            if key not in _STANDARD and not key.startswith("_"):
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


class RedactingFilter(logging.Filter):
    """Masks the given secret values wherever they appear in a formatted message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            if any(s in message for s in self._secrets):
                for secret in self._secrets:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, None
        return True


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
        secrets: values to mask should they ever reach a message.
        stream: where to write (stderr by default).
    """
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not getattr(stream, "isatty", lambda: False)())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
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
