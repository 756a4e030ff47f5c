"""The carrier registry: which call-control adapter serves each carrier.

Carriers are registered by name with an import path to a factory ``(settings: Settings) ->
TelephonyAdapter``, loaded only when an adapter is created, so a Twilio-only gateway never
imports the Telnyx client::

    carriers = CarrierRegistry(settings)
    adapter = carriers.create(TelephonyType.TWILIO)   # ConfigError names missing variables
    await adapter.setup()

The seed reaches it through the provider registry (``registry.create_telephony_adapter``), which
delegates here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.telephony.base import TelephonyAdapter, TelephonyType

__all__ = ["AdapterFactory", "CarrierRegistry"]

AdapterFactory = Callable[[Settings], TelephonyAdapter]

_DEFAULT_ADAPTER_FACTORIES: dict[str, str | AdapterFactory] = {
    TelephonyType.TWILIO: "switchboard.telephony.twilio:create_adapter",
    TelephonyType.TELNYX: "switchboard.telephony.telnyx:create_adapter",
}


class CarrierRegistry:
    """Registered carrier adapters, bound to one :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._factories: dict[str, str | AdapterFactory] = dict(_DEFAULT_ADAPTER_FACTORIES)

    @property
    def names(self) -> tuple[str, ...]:
        """The registered carriers, in registration order."""
        return tuple(self._factories)

    def register(self, name: str, factory: str | AdapterFactory) -> None:
        """Register (or replace) a carrier: a factory or its ``"module:attribute"`` path."""
        self._factories[name] = factory

    def create(self, carrier: str) -> TelephonyAdapter:
        """Create the call-control adapter for ``carrier`` (call ``await adapter.setup()``).

        Raises:
            ConfigError: unknown carrier (not in providers.yaml or not registered), or its
                variables are missing (named in the message and in ``missing``).
        """
        entry = self.settings.catalog.telephony.get(str(carrier))
        if entry is None or str(carrier) not in self._factories:
            raise ConfigError(f"unknown carrier {carrier!r}; known: {', '.join(self._factories)}")
        missing = self.settings.missing(entry.required_env)
        if missing:
            raise ConfigError(
                f"carrier {carrier!r} is not configured: set {', '.join(missing)}",
                missing=missing,
            )
        return _load(self._factories[str(carrier)], carrier)(self.settings)


def _load(factory: str | AdapterFactory, name: str) -> AdapterFactory:
    if callable(factory):
        return factory
    module_name, _, attr = factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{name!r} is unavailable: {exc}") from exc
    return cast(AdapterFactory, getattr(module, attr))
