"""Configuration: environment settings and the providers.yaml catalogue.

This is the only module that reads the environment. :class:`Settings` is built once (by the CLI
or by the caller of ``create_app``) and passed down; library code never looks at ``os.environ``.

Websocket URLs derive from the HTTP base URLs (``http→ws``, ``https→wss``), so pointing
``OPENAI_BASE_URL`` at an emulator on ``http://127.0.0.1:PORT/v1`` is all a test needs.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from switchboard.catalog import Catalog, load_catalog
from switchboard.errors import ConfigError
from switchboard.telephony.dialplan import DialPlan

__all__ = [
    "SECRET_MINIMUMS",
    "SECRET_SETTINGS",
    "Settings",
    "environment",
    "http_to_ws",
    "load_settings",
]

logger = logging.getLogger(__name__)


#: Every secret setting (field names). Empty values count as unset.
SECRET_SETTINGS = (
    "openai_api_key",
    "gemini_api_key",
    "deepgram_api_key",
    "twilio_auth_token",
    "twilio_webhook_shared_key",
    "telnyx_api_key",
    "api_token",
    "metrics_token",
    "signing_secret",
    "webhook_secret",
)

#: The secrets that guard this server, with the shortest value ``serve`` accepts: switchboard's
#: own tokens and keys (anyone who guesses one can use the API, read metrics or mint media
#: tokens), and the carrier keys that sign webhooks (Twilio issues 32-character auth tokens).
SECRET_MINIMUMS: dict[str, tuple[str, int]] = {
    "api_token": ("SWITCHBOARD_API_TOKEN", 32),
    "metrics_token": ("SWITCHBOARD_METRICS_TOKEN", 32),
    "signing_secret": ("SWITCHBOARD_SIGNING_SECRET", 32),
    "twilio_auth_token": ("TWILIO_AUTH_TOKEN", 32),
    "twilio_webhook_shared_key": ("TWILIO_WEBHOOK_SHARED_KEY", 32),
}


def http_to_ws(url: str) -> str:
    """``https://host/x`` → ``wss://host/x``; ``http://`` → ``ws://``; ws(s) URLs unchanged."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    if url.startswith(("ws://", "wss://")):
        return url
    raise ConfigError(f"not an http(s) or ws(s) URL: {url!r}")


class Settings(BaseSettings):
    """Every environment variable switchboard reads (``.env`` is read too).

    Secrets are :class:`SecretStr`, so they print as ``**********`` in reprs and logs.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Providers
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str = Field(default="https://api.openai.com/v1", alias="OPENAI_BASE_URL")
    gemini_api_key: SecretStr | None = Field(default=None, alias="GEMINI_API_KEY")
    gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com", alias="GEMINI_BASE_URL"
    )
    deepgram_api_key: SecretStr | None = Field(default=None, alias="DEEPGRAM_API_KEY")
    deepgram_base_url: str = Field(default="https://api.deepgram.com", alias="DEEPGRAM_BASE_URL")

    # Carriers
    twilio_account_sid: str | None = Field(default=None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(default=None, alias="TWILIO_AUTH_TOKEN")
    twilio_base_url: str = Field(default="https://api.twilio.com", alias="TWILIO_BASE_URL")
    #: SharedKey secret for HMAC_SHA256 webhook signatures (X-Twilio-Webhooks-Signature-Settings).
    twilio_webhook_shared_key: SecretStr | None = Field(
        default=None, alias="TWILIO_WEBHOOK_SHARED_KEY"
    )
    telnyx_api_key: SecretStr | None = Field(default=None, alias="TELNYX_API_KEY")
    telnyx_public_key: str | None = Field(default=None, alias="TELNYX_PUBLIC_KEY")
    telnyx_connection_id: str | None = Field(default=None, alias="TELNYX_CONNECTION_ID")
    telnyx_base_url: str = Field(default="https://api.telnyx.com", alias="TELNYX_BASE_URL")

    # switchboard itself
    public_url: str | None = Field(default=None, alias="SWITCHBOARD_PUBLIC_URL")
    api_token: SecretStr | None = Field(default=None, alias="SWITCHBOARD_API_TOKEN")
    database_url: str = Field(
        default="sqlite+aiosqlite:///switchboard.db", alias="SWITCHBOARD_DATABASE_URL"
    )
    provider: str = Field(default="auto", alias="SWITCHBOARD_PROVIDER")
    #: What transcribes an operator's take-over for the agent at hand-back: ``local`` (the
    #: offline Whisper of the ``[local]`` extra) or ``none`` (the agent is told how long).
    operator_transcriber: Literal["none", "local"] = Field(
        default="none", alias="SWITCHBOARD_OPERATOR_TRANSCRIBER"
    )
    config_path: Path | None = Field(default=None, alias="SWITCHBOARD_CONFIG")
    agents_path: Path | None = Field(default=None, alias="SWITCHBOARD_AGENTS")
    log_level: str = Field(default="INFO", alias="SWITCHBOARD_LOG_LEVEL")
    log_format: str = Field(default="auto", alias="SWITCHBOARD_LOG_FORMAT")
    metrics_token: SecretStr | None = Field(default=None, alias="SWITCHBOARD_METRICS_TOKEN")
    #: OpenTelemetry traces (a span per call; needs the ``otel`` extra). Off by default.
    otel: bool = Field(default=False, alias="SWITCHBOARD_OTEL")
    #: Secret for per-call media tokens; generated at start when unset (single process only).
    signing_secret: SecretStr | None = Field(default=None, alias="SWITCHBOARD_SIGNING_SECRET")
    #: Redis holding a cluster's shared state (``redis://[:password@]host:6379/0``; needs the
    #: ``cluster`` extra). Unset or empty: the state lives in this process (docs/cluster.md).
    #: A secret, as the URL may carry a password.
    redis_url: SecretStr | None = Field(default=None, alias="SWITCHBOARD_REDIS_URL")
    #: This process's name in the cluster (call directory, inboxes). Unset: ``host-pid-random``,
    #: unique per process start. Letters, digits and ``._:@/+=-``; with ``SWITCHBOARD_WORKER``
    #: set too, ``-<worker>`` is appended (the workers of one node are distinct nodes).
    node_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$",
        alias="SWITCHBOARD_NODE_ID",
    )
    #: The worker index inside a node running several (``serve --workers``); shown in the
    #: call directory. Unset: this process's pid.
    worker: str | None = Field(default=None, max_length=32, alias="SWITCHBOARD_WORKER")

    @field_validator("node_id", "worker", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not text.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")  # never echo it
        return value

    # Dialling out (toll-fraud guard; docs/security.md)
    #: Where ``POST /v1/calls`` may dial: comma-separated allow entries (``+14155550100``,
    #: ``+1415*``, ``sip:*@pbx.example.com``). Empty, the default, refuses every outbound call.
    outbound_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SWITCHBOARD_OUTBOUND_ALLOW"
    )
    #: Outbound calls one API token may place in any ``outbound_rate_window_s`` (sliding).
    outbound_rate_limit: int = Field(default=10, ge=1, alias="SWITCHBOARD_OUTBOUND_RATE_LIMIT")
    outbound_rate_window_s: float = Field(
        default=60.0, gt=0, le=86400, alias="SWITCHBOARD_OUTBOUND_RATE_WINDOW_S"
    )

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _split_allow(cls, value: Any) -> Any:
        if isinstance(value, str):  # numbers may hold spaces, so entries split on commas only
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("outbound_allow")
    @classmethod
    def _valid_allow(cls, value: list[str]) -> list[str]:
        DialPlan(value)  # raises ValueError naming every bad entry
        return [entry.strip() for entry in value]

    # Event webhooks (docs/integrations.md)
    #: Where every call's events go (Standard Webhooks: signed, retried, in order per call).
    webhook_url: str | None = Field(default=None, alias="SWITCHBOARD_WEBHOOK_URL")
    #: The signing secret, ``whsec_`` + base64 of 24 to 64 random bytes; required with a URL.
    webhook_secret: SecretStr | None = Field(default=None, alias="SWITCHBOARD_WEBHOOK_SECRET")
    #: The events ``SWITCHBOARD_WEBHOOK_URL`` receives (comma-separated); empty: all of them.
    webhook_events: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SWITCHBOARD_WEBHOOK_EVENTS"
    )
    #: First retry delay; each later one doubles (with jitter) up to ``webhook_retry_max_s``.
    webhook_retry_initial_s: float = Field(
        default=5.0, gt=0, le=3600, alias="SWITCHBOARD_WEBHOOK_RETRY_INITIAL_S"
    )
    webhook_retry_max_s: float = Field(
        default=3600.0, gt=0, le=86400, alias="SWITCHBOARD_WEBHOOK_RETRY_MAX_S"
    )
    #: How long an event is retried before it is given up (``failed``; it can be retried by hand).
    webhook_give_up_after_s: float = Field(
        default=86400.0, gt=0, le=30 * 86400, alias="SWITCHBOARD_WEBHOOK_GIVE_UP_AFTER_S"
    )
    #: One attempt's time limit (connect, send, and read the start of the answer).
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, alias="SWITCHBOARD_WEBHOOK_TIMEOUT_S"
    )

    # Routing by the user's service (docs/integrations.md#routing-by-your-service)
    #: Asked (a signed POST) which agent and variables answer each inbound call; on a timeout
    #: or an error the call is routed by agents.yaml and the reason is on its timeline.
    agent_request_url: str | None = Field(default=None, alias="SWITCHBOARD_AGENT_REQUEST_URL")
    #: How long an inbound call waits for ``agent_request_url``'s answer.
    agent_request_timeout_s: float = Field(
        default=1.5, gt=0, le=10, alias="SWITCHBOARD_AGENT_REQUEST_TIMEOUT_S"
    )
    #: Speak the apology, the failover filler and a warm transfer's briefing with the offline
    #: voice (Piper, ``[local]`` extra), loaded at start-up; off: those are silent.
    offline_voice: bool = Field(default=True, alias="SWITCHBOARD_OFFLINE_VOICE")
    #: Where call recordings are written (agents with ``recording: {enabled: true}``).
    recordings_dir: Path = Field(default=Path("recordings"), alias="SWITCHBOARD_RECORDINGS_DIR")
    #: Seconds between two passes of the sweeper deleting recordings past their retention.
    recordings_sweep_interval_s: float = Field(
        default=600.0, gt=0, alias="SWITCHBOARD_RECORDINGS_SWEEP_INTERVAL_S"
    )

    @field_validator("webhook_events", mode="before")
    @classmethod
    def _split_events(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_url", "agent_request_url", mode="before")
    @classmethod
    def _webhook_url(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    # Exposure and limits (docs/security.md)
    #: Serve ``/docs``, ``/redoc`` and ``/openapi.json`` (off in production by default).
    api_docs: bool = Field(default=False, alias="SWITCHBOARD_API_DOCS")
    #: Largest carrier webhook body (``/twilio/*``, ``/telnyx/*``) in bytes; larger → 413.
    webhook_max_body: int = Field(default=64 * 1024, ge=1024, alias="SWITCHBOARD_WEBHOOK_MAX_BODY")
    #: Largest request body anywhere else (``/v1/*``) in bytes; larger → 413.
    api_max_body: int = Field(default=256 * 1024, ge=1024, alias="SWITCHBOARD_API_MAX_BODY")
    #: Largest WebSocket message ``serve`` accepts (uvicorn ``ws_max_size``); larger → close 1009.
    ws_max_size: int = Field(default=64 * 1024, ge=4096, alias="SWITCHBOARD_WS_MAX_SIZE")
    #: How long a carrier media socket may stay open without sending ``start``.
    media_start_timeout_s: float = Field(
        default=5.0, gt=0, le=60, alias="SWITCHBOARD_MEDIA_START_TIMEOUT_S"
    )
    #: A bridged carrier media socket that sends nothing for this long is half-open (carriers
    #: stream audio without a break, silence included): the call ends as if the caller hung up.
    media_idle_timeout_s: float = Field(
        default=10.0, gt=0, le=300, alias="SWITCHBOARD_MEDIA_IDLE_TIMEOUT_S"
    )
    #: Failed signature or media-token checks one client address may make in any
    #: ``signature_failure_window_s`` (sliding); beyond it the address is refused (429, or
    #: close 1008 on a media socket) without being checked, until its oldest failure is older.
    signature_failure_limit: int = Field(
        default=20, ge=1, alias="SWITCHBOARD_SIGNATURE_FAILURE_LIMIT"
    )
    signature_failure_window_s: float = Field(
        default=60.0, gt=0, le=86400, alias="SWITCHBOARD_SIGNATURE_FAILURE_WINDOW_S"
    )
    #: Calls this node carries at once (prepared or bridged); a call beyond it is refused at the
    #: carrier as busy (TwiML ``<Reject reason="busy">``, Telnyx ``reject``). 0: no limit.
    max_calls: int = Field(default=200, ge=0, alias="SWITCHBOARD_MAX_CALLS")
    #: On SIGTERM, how long ``serve`` lets live calls run on (``/readyz`` 503, no new call) before
    #: it moves the rest to another node (with Redis) or ends them, then exits (docs/deploy.md).
    drain_seconds: float = Field(default=30.0, ge=0, le=86400, alias="SWITCHBOARD_DRAIN_SECONDS")
    #: Where call-record writes wait on disk while the database is unreachable (relative to
    #: the working directory; created when first needed). Empty: they wait in memory only, and
    #: beyond the writer's bound, or at shutdown, they are lost (counted and logged).
    store_spool_dir: str = Field(default="switchboard-spool", alias="SWITCHBOARD_STORE_SPOOL_DIR")

    @field_validator(*SECRET_SETTINGS, "telnyx_public_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # ``TWILIO_WEBHOOK_SHARED_KEY=`` in a .env must not configure an empty HMAC key.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "openai_base_url",
        "gemini_base_url",
        "deepgram_base_url",
        "twilio_base_url",
        "telnyx_base_url",
        "public_url",
    )
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("provider")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    # -- derived ---------------------------------------------------------------------------------
    @property
    def openai_ws_url(self) -> str:
        return http_to_ws(self.openai_base_url)

    @property
    def gemini_ws_url(self) -> str:
        return http_to_ws(self.gemini_base_url)

    @property
    def deepgram_ws_url(self) -> str:
        return http_to_ws(self.deepgram_base_url)

    @property
    def public_ws_url(self) -> str | None:
        return http_to_ws(self.public_url) if self.public_url else None

    @property
    def outbound_dial_plan(self) -> DialPlan:
        """Where ``POST /v1/calls`` may dial (``SWITCHBOARD_OUTBOUND_ALLOW``)."""
        return DialPlan(self.outbound_allow)

    @cached_property
    def catalog(self) -> Catalog:
        """The providers.yaml catalogue (packaged, or ``SWITCHBOARD_CONFIG``)."""
        return load_catalog(self.config_path)

    def weak_secrets(self) -> list[str]:
        """Each guarding secret that is set but shorter than :data:`SECRET_MINIMUMS` allows.

        The messages name the variable and the minimum, never the value.
        """
        weak = []
        for name, (variable, minimum) in SECRET_MINIMUMS.items():
            value = self.secret(name)
            if value is not None and len(value) < minimum:
                weak.append(f"{variable} is shorter than {minimum} characters")
        return weak

    def secret(self, name: str) -> str | None:
        """The plain value of a secret setting, for the one place that sends it on the wire."""
        value: Any = getattr(self, name)
        if value is None:
            return None
        return str(value.get_secret_value()) if isinstance(value, SecretStr) else str(value)

    def missing(self, variables: list[str]) -> tuple[str, ...]:
        """Which of the environment ``variables`` (``OPENAI_API_KEY``…) are unset or empty.

        The provider and carrier registries ask this of the ``required_env`` lists in
        providers.yaml; each variable is the alias of one field.
        """
        fields = {info.alias: name for name, info in type(self).model_fields.items()}
        return tuple(env for env in variables if not self.secret(fields.get(env, env)))


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment (and ``.env``), with keyword overrides.

    Raises:
        ConfigError: a variable has an invalid value (the message names it).
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
    _ = settings.catalog  # fail at start, not at the first call, on a bad providers.yaml
    return settings


def environment(env_file: Path | None = Path(".env")) -> dict[str, str]:
    """The process environment over ``env_file``'s entries (as :class:`Settings` reads them).

    What ``${VAR}`` in agents.yaml expands from (HTTP tools' URLs and headers): this module
    stays the one place that reads the environment.
    """
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    return values | dict(os.environ)
