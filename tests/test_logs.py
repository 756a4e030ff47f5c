"""Logging through its public surface: ``configure_logging`` into a buffer, records checked.

Covers per-module levels (``SWITCHBOARD_LOG_LEVEL="INFO,switchboard.bridge=DEBUG"``), ``call_id``
on records from a call's ``LoggerAdapter`` and from code running under ``call_context`` (tasks
included), JSON and text formats, and redaction of secrets and credential headers.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from switchboard.config import load_settings
from switchboard.logs import (
    WIRE_LOGGERS,
    RedactingFilter,
    call_context,
    configure_logging,
    current_call_id,
    install_wire_redaction,
    secret_values,
)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    touched = ("switchboard", "switchboard.bridge", "switchboard.providers", "websockets")
    levels = {name: logging.getLogger(name).level for name in touched}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_per_module_levels_from_the_setting() -> None:
    settings = load_settings(SWITCHBOARD_LOG_LEVEL="WARNING,switchboard.bridge=DEBUG")
    buffer = io.StringIO()
    configure_logging(level=settings.log_level, fmt="json", stream=buffer)
    logging.getLogger("switchboard.bridge.session").debug("bridge detail")
    logging.getLogger("switchboard.providers.openai_realtime").info("provider info")
    logging.getLogger("switchboard.providers.openai_realtime").warning("provider warning")
    logging.getLogger("other").info("other info")
    messages = [line["message"] for line in json_lines(buffer)]
    assert messages == ["bridge detail", "provider warning"]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_call_id_of_the_adapter_and_extras() -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer)
    session_log = logging.getLogger("switchboard.bridge.session")
    adapter = logging.LoggerAdapter(session_log, {"call_id": "call_abc"})
    adapter.info("call ending: %s", "agent_hangup")
    logging.getLogger("switchboard.bridge.manager").info(
        "call %s ended", "call_abc", extra={"call_id": "call_abc", "turns": 3}
    )
    first, second = json_lines(buffer)
    assert first["call_id"] == "call_abc" and first["message"] == "call ending: agent_hangup"
    assert first["level"] == "info" and first["logger"] == "switchboard.bridge.session"
    assert first["ts"].endswith("Z")
    assert second["call_id"] == "call_abc" and second["turns"] == 3


@pytest.mark.usefixtures("restore_logging")
def test_call_context_reaches_records_and_tasks_and_ends_with_the_block() -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer)
    log = logging.getLogger("switchboard.providers.openai_realtime.session")

    async def provider_reader() -> None:
        await asyncio.sleep(0)
        log.info("reader running")

    async def call() -> None:
        with call_context("call_ctx1"):
            assert current_call_id() == "call_ctx1"
            log.info("connected")
            task = asyncio.get_running_loop().create_task(provider_reader())
        await task  # created inside the block: still the call's
        log.info("outside the call")

    asyncio.run(call())
    assert current_call_id() is None
    lines = json_lines(buffer)
    assert [(line["message"], line.get("call_id")) for line in lines] == [
        ("connected", "call_ctx1"),
        ("reader running", "call_ctx1"),
        ("outside the call", None),
    ]


@pytest.mark.usefixtures("restore_logging")
def test_text_format_shows_the_call_id() -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="text", stream=buffer)
    with call_context("call_txt"):
        logging.getLogger("switchboard.bridge.manager").info("bridging")
    line = buffer.getvalue().strip()
    assert "INFO" in line and "switchboard.bridge.manager [call_txt] bridging" in line


@pytest.mark.usefixtures("restore_logging")
def test_every_secret_setting_is_masked() -> None:
    settings = load_settings(
        OPENAI_API_KEY="sk-supersecret-openai",
        TWILIO_AUTH_TOKEN="twilio-supersecret",
        SWITCHBOARD_METRICS_TOKEN="metrics-supersecret",
        SWITCHBOARD_SIGNING_SECRET="signing-supersecret",
    )
    secrets = secret_values(settings)
    assert {"sk-supersecret-openai", "metrics-supersecret", "signing-supersecret"} <= set(secrets)
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer, secrets=secrets)
    log = logging.getLogger("switchboard.test")
    log.info("oops %s and %s", "sk-supersecret-openai", "metrics-supersecret")
    log.warning("url ?token=signing-supersecret&x=twilio-supersecret")
    text = buffer.getvalue()
    for secret in secrets:
        assert secret not in text
    assert text.count("***") + text.count("<redacted>") == 4  # query tokens: <redacted>


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("msg", "args", "leak"),
    [
        # websockets' handshake lines at DEBUG: "> %s: %s" per header
        ("> %s: %s", ("Authorization", "Bearer sk-live-abcdef"), "sk-live-abcdef"),
        ("> %s: %s", ("x-goog-api-key", "AIzaSyABCDEF"), "AIzaSyABCDEF"),
        ("%s", ("headers {'authorization': 'Token dg-key-123456'}",), "dg-key-123456"),
        ("%s", ('Headers({"X-Api-Key": "key-987654321"})',), "key-987654321"),
    ],
)
def test_credential_headers_are_masked_without_configured_secrets(
    msg: str, args: tuple[str, ...], leak: str
) -> None:
    buffer = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=buffer)
    logging.getLogger("websockets.client").debug(msg, *args)
    (line,) = json_lines(buffer)
    assert leak not in line["message"]
    assert "<redacted>" in line["message"]


@pytest.mark.usefixtures("restore_logging")
def test_ordinary_lines_are_untouched() -> None:
    buffer = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=buffer, secrets=["short"])
    logging.getLogger("websockets.client").debug("> %s: %s", "Host", "api.openai.com")
    logging.getLogger("switchboard.x").info("short is too short a secret to mask")
    first, second = json_lines(buffer)
    assert first["message"] == "> Host: api.openai.com"
    assert second["message"] == "short is too short a secret to mask"


def test_wire_loggers_mask_keys_without_switchboard_logging_setup() -> None:
    install_wire_redaction()  # what an application with its own logging setup calls
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    wire = logging.getLogger("websockets.client")
    old_level = wire.level
    wire.addHandler(handler)
    wire.setLevel(logging.DEBUG)
    try:
        wire.debug("> %s: %s", "Authorization", "Bearer sk-wire-secret-123")
        wire.debug("> Authorization: Token dg-wire-secret-456")
    finally:
        wire.removeHandler(handler)
        wire.setLevel(old_level)
    text = stream.getvalue()
    assert "sk-wire-secret-123" not in text and "dg-wire-secret-456" not in text
    assert text.count("<redacted>") == 2


def test_query_tokens_are_masked_in_server_logs() -> None:
    install_wire_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    access = logging.getLogger("uvicorn.access")
    old_level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        access.info('%s - "WebSocket %s" %d', "127.0.0.1:1", "/telnyx/media?token=abc.def", 101)
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    assert "abc.def" not in stream.getvalue()
    assert "/telnyx/media?token=<redacted>" in stream.getvalue()


def _wire_filters() -> list[int]:
    return [
        sum(isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters)
        for name in WIRE_LOGGERS
    ]


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_installs_the_wire_redaction_once() -> None:
    configure_logging(level="INFO", fmt="json", stream=io.StringIO())
    configure_logging(level="INFO", fmt="json", stream=io.StringIO())
    install_wire_redaction()
    assert _wire_filters() == [1] * len(WIRE_LOGGERS)
