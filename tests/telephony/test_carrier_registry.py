"""The carrier registry, and the provider registry's seed entry point that delegates to it."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from switchboard.config import Settings, load_settings
from switchboard.errors import ConfigError
from switchboard.providers.registry import get_provider_registry
from switchboard.telephony.base import TelephonyAdapter, TelephonyType
from switchboard.telephony.registry import CarrierRegistry
from switchboard.telephony.twilio import TwilioAdapter

TWILIO_ENV = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "t" * 32}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "OPENAI_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TELNYX_API_KEY",
        "TELNYX_PUBLIC_KEY",
        "SWITCHBOARD_PUBLIC_URL",
    ):
        monkeypatch.delenv(key, raising=False)


class RecordingAdapter:
    """A carrier adapter that only records the settings it was made from."""

    name: ClassVar[str] = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def setup(self) -> None: ...

    async def answer_call(self, call_id: str, **options: Any) -> None: ...

    async def hang_up(self, call_id: str) -> None: ...

    async def transfer_call(self, call_id: str, destination: str) -> None: ...

    async def send_dtmf(self, call_id: str, digits: str) -> None: ...

    async def place_call(self, *, to: str, from_: str, **options: Any) -> str:
        return "CA1"

    async def aclose(self) -> None: ...


def test_the_default_carriers_load_their_adapters_by_path() -> None:
    carriers = CarrierRegistry(load_settings(**TWILIO_ENV))
    assert carriers.names == ("twilio", "telnyx")
    adapter = carriers.create(TelephonyType.TWILIO)
    assert isinstance(adapter, TwilioAdapter)
    assert isinstance(adapter, TelephonyAdapter)


def test_unknown_and_unconfigured_carriers_are_config_errors() -> None:
    carriers = CarrierRegistry(load_settings())
    with pytest.raises(ConfigError, match="unknown carrier 'vonage'; known: twilio, telnyx"):
        carriers.create("vonage")
    with pytest.raises(ConfigError) as info:
        carriers.create(TelephonyType.TWILIO)
    assert info.value.missing == ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")


def test_a_registered_factory_replaces_the_default() -> None:
    settings = load_settings(**TWILIO_ENV)
    carriers = CarrierRegistry(settings)
    carriers.register("twilio", RecordingAdapter)
    adapter = carriers.create("twilio")
    assert isinstance(adapter, RecordingAdapter)
    assert adapter.settings is settings


def test_the_provider_registry_delegates_to_its_carriers() -> None:
    registry = get_provider_registry(load_settings(**TWILIO_ENV))
    registry.register_telephony("twilio", RecordingAdapter)
    assert isinstance(registry.create_telephony_adapter(TelephonyType.TWILIO), RecordingAdapter)
    assert isinstance(registry.carriers.create("twilio"), RecordingAdapter)


def test_settings_name_the_missing_variables_in_order() -> None:
    settings = load_settings(TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="")
    assert settings.missing(["TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "OPENAI_API_KEY"]) == (
        "TWILIO_AUTH_TOKEN",  # an empty secret counts as unset
        "OPENAI_API_KEY",
    )
