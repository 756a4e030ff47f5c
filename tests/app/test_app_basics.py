"""The app skeleton: health, providers, bearer auth, JSON errors, request ids."""

from __future__ import annotations

from fastapi.testclient import TestClient

from switchboard.app import create_app
from switchboard.config import load_settings

TOKEN = "test-api-token"


def client(**env: str) -> TestClient:
    settings = load_settings(SWITCHBOARD_API_TOKEN=TOKEN, **env)
    return TestClient(create_app(settings))


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_healthz_is_public() -> None:
    response = client().get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["x-request-id"]


def test_v1_requires_the_bearer_token() -> None:
    c = client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = c.get("/v1/providers", headers=headers)
        assert response.status_code == 401
        body = response.json()["error"]
        assert body["status"] == 401 and "bearer token" in body["message"]
        assert TOKEN not in response.text
        assert response.headers["www-authenticate"] == "Bearer"


def test_providers_show_capabilities_and_never_secrets() -> None:
    c = client(OPENAI_API_KEY="sk-very-secret", GEMINI_BASE_URL="http://127.0.0.1:1")
    response = c.get("/v1/providers", headers=auth())
    assert response.status_code == 200
    providers = {p["name"]: p for p in response.json()}
    assert providers["openai"]["configured"] is True
    assert providers["gemini"]["configured"] is False
    assert providers["gemini"]["missing"] == ["GEMINI_API_KEY"]
    assert providers["gemini"]["capabilities"]["multimodal"] is True
    assert "pcm16" in providers["openai"]["capabilities"]["audio_formats"]
    assert "sk-very-secret" not in response.text


def test_request_id_is_echoed_when_sane() -> None:
    c = client()
    assert (
        c.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    )
    bad = c.get("/healthz", headers={"X-Request-ID": "x" * 200}).headers["x-request-id"]
    assert bad != "x" * 200 and len(bad) == 32


def test_unknown_route_is_a_json_404() -> None:
    response = client().get("/v1/nope", headers=auth())
    assert response.status_code == 404
    assert response.json()["error"]["status"] == 404


def test_generated_token_when_unset() -> None:
    app = create_app(load_settings())
    state = app.state.switchboard
    assert state.generated_token and len(state.api_token) >= 24
    c = TestClient(app)
    assert (
        c.get("/v1/providers", headers={"Authorization": f"Bearer {state.api_token}"}).status_code
        == 200
    )
