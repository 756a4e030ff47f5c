"""The HTTP API keeps its published contract (schemathesis against the live ``/openapi.json``).

The whole app runs under uvicorn on a loopback port (with ``SWITCHBOARD_API_DOCS=true`` so it
serves its schema), with both carriers configured so their webhooks answer as in production.
schemathesis reads the schema from the server and sends generated requests, valid and invalid,
to every operation; each response must be no 5xx, have a status code the schema declares for
the operation, and a body and headers matching the declared schema. Authentication is checked
too: every operation that declares the bearer scheme must refuse a request without it (and
with a wrong token).

Stateful testing follows the schema's links between operations; when the schema declares none
(FastAPI writes no links by itself) that test says so and skips.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema
from tests.conftest import UNIT

from switchboard.app import create_app
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer, bind_loopback

TOKEN = "contract-test-token-of-at-least-32-chars"
#: Examples per operation: enough to reach every documented status, small enough for CI.
EXAMPLES = 25
#: Two of schemathesis' checks judge intent, not the contract, and are off:
#: * "a request the schema allows must be accepted": rules JSON Schema cannot say (``since``
#:   before ``until``, a cursor must be one the API handed out) make such requests 400;
#: * "a request the schema forbids must be refused": FastAPI ignores undeclared query
#:   parameters and headers (``?=0``), as most HTTP APIs do, and reads ``"2"`` as a datetime.
#: Every other check runs on valid and invalid requests alike: no 5xx, only declared status
#: codes, bodies, content types and headers as declared, and authentication required.
EXCLUDED = [positive_data_acceptance, negative_data_rejection]


class _ServerThread:
    """The app under uvicorn in a thread of its own (schemathesis' tests are synchronous)."""

    def __init__(self, tmp_path: Path) -> None:
        self._sock = bind_loopback()
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.settings = load_settings(
            SWITCHBOARD_API_DOCS="true",
            SWITCHBOARD_API_TOKEN=TOKEN,
            SWITCHBOARD_PUBLIC_URL=self.base_url,
            SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            SWITCHBOARD_STORE_SPOOL_DIR=str(tmp_path / "spool"),
            TWILIO_ACCOUNT_SID="AC" + "0" * 32,
            TWILIO_AUTH_TOKEN="t" * 32,
            TELNYX_API_KEY="KEY-contract",
            TELNYX_PUBLIC_KEY="6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=",
            SWITCHBOARD_OUTBOUND_RATE_LIMIT="100000",
        )
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = create_app(self.settings)
        async with LoopbackServer(app, sock=self._sock, ws_max_size=self.settings.ws_max_size):
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> _ServerThread:
        self._thread.start()
        assert self._ready.wait(30 * UNIT), "the app did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30 * UNIT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_ServerThread]:
    with _ServerThread(tmp_path_factory.mktemp("contract")) as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(server: _ServerThread) -> Any:
    return schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, from the app's schema built in this process (the
    tests then take each operation from the live server's schema)."""
    settings = load_settings(SWITCHBOARD_API_DOCS="true", SWITCHBOARD_API_TOKEN=TOKEN)
    paths = create_app(settings).openapi()["paths"]
    return [
        (method.upper(), path)
        for path, item in paths.items()
        for method, operation in item.items()
        if not _streams(operation)  # never ends: test_event_streams_keep_their_contract
    ]


def _streams(operation: dict[str, Any]) -> bool:
    """The operation answers an endless text/event-stream."""
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    return "text/event-stream" in content


def test_event_streams_keep_their_contract(server: _ServerThread, api_schema: Any) -> None:
    """A stream's events (the first, a snapshot, with the server idle) match the schema the
    operation declares for one event; schemathesis cannot call an endless stream."""
    streams = [
        (path, operation)
        for path, item in api_schema.raw_schema["paths"].items()
        for operation in item.values()
        if _streams(operation)
    ]
    assert [path for path, _ in streams] == ["/v1/events"]
    for path, operation in streams:
        schema = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with (
            httpx.Client(base_url=server.base_url, timeout=10 * UNIT) as http,
            http.stream("GET", path, headers=headers) as answer,
        ):
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            for line in answer.iter_lines():
                if not line:
                    break  # the end of the first event
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        jsonschema.validate(fields, schema)
        assert fields["event"] == "snapshot"
        assert isinstance(json.loads(fields["data"]), dict)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation_keeps_its_contract(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    raw = api_schema.raw_schema["paths"][path][method.lower()]
    if mode is GenerationMode.NEGATIVE and not (raw.get("parameters") or raw.get("requestBody")):
        pytest.skip("no parameters and no body: there is nothing to make invalid")
    headers = {"Authorization": f"Bearer {TOKEN}"} if path.startswith("/v1") else {}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is enough
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, timeout=10 * UNIT, excluded_checks=EXCLUDED)

    check()


def test_the_schema_declares_how_the_api_is_authenticated(api_schema: OpenApiSchema) -> None:
    raw = api_schema.raw_schema
    schemes = raw.get("components", {}).get("securitySchemes", {})
    assert any(s.get("type") == "http" and s.get("scheme") == "bearer" for s in schemes.values())
    for path, item in raw["paths"].items():
        for method, operation in item.items():
            secured = bool(operation.get("security"))
            assert secured == path.startswith("/v1"), f"{method.upper()} {path}"
            if secured:
                assert "401" in operation["responses"], f"{method.upper()} {path}: no 401"


def test_stateful_links(api_schema: OpenApiSchema) -> None:
    raw = api_schema.raw_schema
    links = [
        name
        for item in raw["paths"].values()
        for operation in item.values()
        for response in operation.get("responses", {}).values()
        for name in response.get("links", {})
    ]
    if not links:
        pytest.skip("the schema declares no links between operations: nothing stateful to follow")
    state_machine = api_schema.as_state_machine()
    state_machine.run()


def test_every_secured_operation_refuses_a_missing_or_wrong_token(
    server: _ServerThread, api_schema: OpenApiSchema
) -> None:
    refused: list[str] = []
    with httpx.Client(base_url=server.base_url, timeout=10 * UNIT) as http:
        for path, item in api_schema.raw_schema["paths"].items():
            for method, operation in item.items():
                if not operation.get("security"):
                    continue
                url = path.replace("{", "").replace("}", "")  # any id: auth comes first
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                    answer = http.request(method.upper(), url, headers=headers, json={})
                    if answer.status_code != 401:
                        refused.append(f"{method.upper()} {path} {headers}: {answer.status_code}")
    assert refused == []
