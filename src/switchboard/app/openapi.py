"""The published schema tells the whole contract, the edge's answers included.

FastAPI describes what each route returns, but not what is answered before a route runs: the
edge's 401 (``/v1`` bearer token) and 413 (body limits), and the carrier webhooks' refusals
(403 bad signature, 429 a throttled source, 503 carrier not configured). :func:`describe_edge`
adds them, and the bearer scheme, to the app's ``/openapi.json``, so a client generated from it,
and the contract test (tests/app/test_api_contract.py), know every status an operation may
answer: also 400 for a body that is not JSON and 404 for an unknown id on every ``/v1`` route
that takes one. Other route-specific errors (400 a bad cursor, 403 a refused destination...)
are declared on the routes themselves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["ERROR_SCHEMA", "describe_edge"]

#: The body of every error answer (``app/errors.py``).
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_WEBHOOK_PREFIXES = ("/twilio/", "/telnyx/")
#: OpenAPI has no websockets: they are listed under ``x-websockets`` (token in the
#: ``Authorization`` header or ``?token=``; protocols in the modules named).
WEBSOCKETS: dict[str, dict[str, str]] = {
    "/v1/stream": {
        "description": "a browser or program talks to a provider or an agent: PCM16/Opus in, "
        "agent audio and JSON events out (switchboard.app.control_api)",
    },
    "/v1/calls/{call_id}/listen": {
        "description": "both sides of a live call mixed, PCM16 16 kHz binary frames "
        "(switchboard.app.operator_audio)",
    },
    "/v1/calls/{call_id}/operator": {
        "description": "while the call is taken over: the operator's microphone (PCM16 16 kHz) "
        "to the caller, the caller back (switchboard.app.operator_audio)",
    },
}
_METHODS = ("get", "put", "post", "delete", "patch")


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _text(description: str) -> dict[str, Any]:
    # Twilio's refusals are plain text (Twilio's debugger shows them); Telnyx's are JSON.
    return {
        "description": description,
        "content": {"text/plain": {"schema": {"type": "string"}}, "application/json": {}},
    }


def _add(operation: dict[str, Any], status: str, response: dict[str, Any]) -> None:
    operation.setdefault("responses", {}).setdefault(status, response)


def _describe(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "SWITCHBOARD_API_TOKEN",
    }
    schema["x-websockets"] = WEBSOCKETS
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            if path == "/v1" or path.startswith("/v1/"):
                operation["security"] = [{"bearer": []}]
                _add(operation, "401", _error("missing or invalid bearer token"))
                if "requestBody" in operation:
                    _add(operation, "400", _error("the body is not JSON"))
                    _add(operation, "413", _error("body larger than SWITCHBOARD_API_MAX_BODY"))
                if any(p.get("in") == "path" for p in operation.get("parameters", ())):
                    _add(operation, "404", _error("no such resource"))  # every {id} route
            elif path.startswith(_WEBHOOK_PREFIXES):
                _add(operation, "400", _error("malformed webhook"))
                _add(operation, "403", _text("signature missing, invalid or replayed"))
                _add(operation, "413", _error("body larger than SWITCHBOARD_WEBHOOK_MAX_BODY"))
                _add(operation, "429", _error("too many failed signature checks from here"))
                _add(operation, "503", _error("this carrier is not configured here"))
    return schema


def describe_edge(app: FastAPI) -> None:
    """Build ``app``'s schema now, with the edge's answers and the bearer scheme (see above).

    Call it once every route is included: FastAPI serves the schema it caches here.
    """
    app.openapi_schema = None
    app.openapi_schema = _describe(app.openapi())
