"""Settings from the environment and providers.yaml validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.catalog import load_catalog
from switchboard.config import (
    SECRET_MINIMUMS,
    SECRET_SETTINGS,
    Settings,
    http_to_ws,
    load_settings,
)
from switchboard.errors import ConfigError


def test_defaults_and_ws_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1/")
    settings = load_settings()
    assert settings.openai_base_url == "http://127.0.0.1:9999/v1"
    assert settings.openai_ws_url == "ws://127.0.0.1:9999/v1"
    assert settings.gemini_ws_url == "wss://generativelanguage.googleapis.com"
    assert settings.deepgram_base_url == "https://api.deepgram.com"
    assert settings.twilio_base_url == "https://api.twilio.com"
    assert settings.telnyx_base_url == "https://api.telnyx.com"
    assert settings.provider == "auto"


def test_every_documented_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "OPENAI_API_KEY": "sk-test",
        "GEMINI_API_KEY": "g-test",
        "DEEPGRAM_API_KEY": "d-test",
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_AUTH_TOKEN": "tw-token",
        "TELNYX_API_KEY": "KEY123",
        "TELNYX_PUBLIC_KEY": "cHVi",
        "TELNYX_CONNECTION_ID": "conn-1",
        "SWITCHBOARD_PUBLIC_URL": "https://voice.example.com",
        "SWITCHBOARD_API_TOKEN": "api-token",
        "SWITCHBOARD_DATABASE_URL": "sqlite+aiosqlite:///x.db",
        "SWITCHBOARD_PROVIDER": "OpenAI",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    assert s.secret("openai_api_key") == "sk-test"
    assert s.secret("twilio_auth_token") == "tw-token"
    assert s.telnyx_connection_id == "conn-1"
    assert s.public_ws_url == "wss://voice.example.com"
    assert s.provider == "openai"
    assert s.database_url.endswith("x.db")
    # secrets never show in the repr
    assert "sk-test" not in repr(s) and "tw-token" not in repr(s)


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("GEMINI_API_KEY=from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert load_settings().secret("gemini_api_key") == "from-dotenv"


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"OPENAI_BASE_URL|openai_base_url"):
        load_settings(OPENAI_BASE_URL="ftp://nope")


def test_http_to_ws() -> None:
    assert http_to_ws("https://a/b") == "wss://a/b"
    assert http_to_ws("http://a") == "ws://a"
    assert http_to_ws("wss://a") == "wss://a"
    with pytest.raises(ConfigError):
        http_to_ws("mailto:x")


def test_packaged_catalog_has_the_seed_models() -> None:
    catalog = load_catalog()
    openai = catalog.providers["openai"]
    assert openai.default_model == "gpt-4o-mini-realtime-preview-2024-12-17"
    assert openai.models["gpt-4o-realtime-preview-2024-12-17"].tier == "premium"
    assert {"gpt-realtime", "gpt-realtime-mini"} <= set(openai.models)
    assert (
        catalog.providers["gemini"].default_model == "gemini-2.5-flash-preview-native-audio-dialog"
    )
    assert openai.max_session_seconds == 1800
    assert catalog.providers["gemini"].max_session_seconds == 3600
    assert catalog.providers["deepgram"].max_session_seconds is None
    assert catalog.telephony["twilio"].max_call_seconds == 14400
    assert catalog.telephony["telnyx"].max_call_seconds is None
    assert {"nova-2", "nova-3", "whisper"} <= set(catalog.providers["deepgram"].models)


def test_bad_catalog_names_the_offending_key(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "src/switchboard/providers.yaml").read_text()
    bad = tmp_path / "providers.yaml"
    bad.write_text(text.replace("tier: premium", "tier: platinum", 1))
    with pytest.raises(ConfigError) as info:
        load_catalog(bad)
    message = str(info.value)
    assert str(bad) in message
    assert "providers.openai.models.gpt-4o-realtime-preview-2024-12-17.tier" in message


def test_unknown_key_and_bad_yaml_are_rejected(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "src/switchboard/providers.yaml").read_text()
    bad = tmp_path / "p.yaml"
    bad.write_text(
        text.replace("default_strategy: balanced", "default_strategy: balanced\nbogus: 1")
    )
    with pytest.raises(ConfigError, match="bogus"):
        load_catalog(bad)
    bad.write_text("providers: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_catalog(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")


def test_settings_fail_at_start_on_a_bad_catalog(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\n")
    with pytest.raises(ConfigError, match="prices_as_of"):
        load_settings(SWITCHBOARD_CONFIG=str(bad))
    assert isinstance(Settings(), Settings)


def test_an_empty_secret_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # "NAME=" in a .env or a shell export: an empty HMAC key or token must configure nothing
    for name in ("TWILIO_WEBHOOK_SHARED_KEY", "SWITCHBOARD_SIGNING_SECRET"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("SWITCHBOARD_METRICS_TOKEN", "   ")
    settings = load_settings(SWITCHBOARD_API_TOKEN="", TELNYX_PUBLIC_KEY="")
    for name in SECRET_SETTINGS:
        assert settings.secret(name) != "", name
    assert settings.secret("twilio_webhook_shared_key") is None
    assert settings.secret("signing_secret") is None
    assert settings.secret("metrics_token") is None
    assert settings.secret("api_token") is None
    assert settings.telnyx_public_key is None


def test_weak_secrets_are_named_never_shown() -> None:
    strong = "s" * 32
    settings = load_settings(
        SWITCHBOARD_API_TOKEN="short-api-token",
        SWITCHBOARD_METRICS_TOKEN=strong,
        TWILIO_AUTH_TOKEN="tw-" + "x" * 10,
        TWILIO_WEBHOOK_SHARED_KEY=None,
    )
    weak = settings.weak_secrets()
    assert weak == [
        "SWITCHBOARD_API_TOKEN is shorter than 32 characters",
        "TWILIO_AUTH_TOKEN is shorter than 32 characters",
    ]
    assert not any("short-api-token" in w for w in weak)
    assert load_settings(SWITCHBOARD_API_TOKEN=strong).weak_secrets() == []
    assert {variable for variable, _ in SECRET_MINIMUMS.values()} == {
        "SWITCHBOARD_API_TOKEN",
        "SWITCHBOARD_METRICS_TOKEN",
        "SWITCHBOARD_SIGNING_SECRET",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_WEBHOOK_SHARED_KEY",
    }


def test_outbound_dialling_is_denied_by_default_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OUTBOUND_ALLOW", "OUTBOUND_RATE_LIMIT", "OUTBOUND_RATE_WINDOW_S"):
        monkeypatch.delenv(f"SWITCHBOARD_{name}", raising=False)
    settings = load_settings()
    assert settings.outbound_allow == []
    assert settings.outbound_dial_plan.denies_all
    assert (settings.outbound_rate_limit, settings.outbound_rate_window_s) == (10, 60.0)


def test_outbound_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SWITCHBOARD_OUTBOUND_ALLOW", " +1 415 555 0100, +1212* ,sip:*@pbx.example.com"
    )
    settings = load_settings()
    assert settings.outbound_allow == ["+1 415 555 0100", "+1212*", "sip:*@pbx.example.com"]
    assert settings.outbound_dial_plan.check("+12125550123").allowed


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SWITCHBOARD_OUTBOUND_ALLOW", "*", "SWITCHBOARD_OUTBOUND_ALLOW: Value error, '*' would"),
        ("SWITCHBOARD_OUTBOUND_ALLOW", "+1415", "write '+1415*'"),
        ("SWITCHBOARD_OUTBOUND_RATE_LIMIT", "0", "SWITCHBOARD_OUTBOUND_RATE_LIMIT: Input should"),
        ("SWITCHBOARD_OUTBOUND_RATE_WINDOW_S", "0", "SWITCHBOARD_OUTBOUND_RATE_WINDOW_S: Input"),
    ],
)
def test_bad_outbound_settings_fail_at_load(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="invalid configuration") as info:
        load_settings()
    assert message in str(info.value)
