"""Cost of a call, itemised from the dated list prices in ``providers.yaml``.

:func:`estimate_call_cost` turns a call's summed provider :class:`~switchboard.providers.base.Usage`
and its carrier minutes into lines such as::

    openai input audio tokens: 3,200 × $10/M = $0.032
    twilio call minutes: 2 × $0.0125/min = $0.025

Conventions (state them in any bill you show):

* token counts in ``Usage`` are disjoint: ``cached_input_tokens`` are billed at the cached rate
  and are not also counted in ``input_text_tokens`` / ``input_audio_tokens``;
* per-minute audio prices apply to ``input_audio_seconds`` (STT) / ``output_audio_seconds``;
* TTS is billed per thousand ``tts_characters``;
* carriers bill whole started minutes by default (Twilio and Telnyx round up per call).

This is an estimate from list prices as of ``catalog.prices_as_of``, not an invoice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from switchboard.catalog import Catalog, Prices
from switchboard.errors import ConfigError
from switchboard.media import Usage

__all__ = [
    "CostBreakdown",
    "CostLine",
    "ServedUsage",
    "estimate_call_cost",
    "estimate_served_cost",
    "format_money",
]

_TOKEN_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (price key, Usage field, label)
    ("input_text", "input_text_tokens", "input text tokens"),
    ("cached_input", "cached_input_tokens", "cached input tokens"),
    ("input_audio", "input_audio_tokens", "input audio tokens"),
    ("output_text", "output_text_tokens", "output text tokens"),
    ("output_audio", "output_audio_tokens", "output audio tokens"),
)
_MINUTE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("input_audio", "input_audio_seconds", "input audio minutes"),
    ("output_audio", "output_audio_seconds", "output audio minutes"),
)


def format_money(amount: float) -> str:
    """``0.032`` → ``"$0.032"``, ``10.0`` → ``"$10"``, ``1234.5`` → ``"$1,234.5"``."""
    text = f"{amount:,.6f}".rstrip("0").rstrip(".")
    return f"${text}" if text not in ("", "-0") else "$0"


def _quantity(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class CostLine:
    """One item of a bill.

    Attributes:
        category: ``"provider"`` or ``"telephony"``.
        source: the provider or carrier name (``"openai"``, ``"twilio"``).
        item: what is billed (``"input audio tokens"``).
        quantity: how many units.
        unit_price: USD per ``per`` units.
        per: the price basis in units (1,000,000 tokens, 1 minute, 1,000 characters).
        unit: the basis as shown (``"M"``, ``"min"``, ``"1K chars"``).
        amount: ``quantity × unit_price / per`` in USD.
    """

    category: Literal["provider", "telephony"]
    source: str
    item: str
    quantity: float
    unit_price: float
    per: float
    unit: str
    amount: float

    @property
    def text(self) -> str:
        """``"openai input audio tokens: 3,200 × $10/M = $0.032"``."""
        return (
            f"{self.source} {self.item}: {_quantity(self.quantity)} × "
            f"{format_money(self.unit_price)}/{self.unit} = {format_money(self.amount)}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "source": self.source,
            "item": self.item,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "per": self.per,
            "unit": self.unit,
            "amount": self.amount,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """An itemised estimate: ``lines``, their ``total``, the currency and the price date."""

    lines: tuple[CostLine, ...] = ()
    total: float = 0.0
    currency: str = "USD"
    prices_as_of: date | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def provider_total(self) -> float:
        return round(sum(x.amount for x in self.lines if x.category == "provider"), 8)

    @property
    def telephony_total(self) -> float:
        return round(sum(x.amount for x in self.lines if x.category == "telephony"), 8)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (stored in the call record, served by the API)."""
        return {
            "lines": [line.as_dict() for line in self.lines],
            "total": self.total,
            "currency": self.currency,
            "prices_as_of": self.prices_as_of.isoformat() if self.prices_as_of else None,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostBreakdown:
        """Inverse of :meth:`as_dict` (the derived ``text`` of each line is ignored)."""
        lines = tuple(
            CostLine(**{k: v for k, v in line.items() if k != "text"})
            for line in data.get("lines", [])
        )
        as_of = data.get("prices_as_of")
        return cls(
            lines=lines,
            total=float(data.get("total", 0.0)),
            currency=str(data.get("currency", "USD")),
            prices_as_of=date.fromisoformat(as_of) if as_of else None,
            notes=tuple(data.get("notes", ())),
        )


def _provider_lines(source: str, prices: Prices, usage: Usage) -> list[CostLine]:
    lines: list[CostLine] = []
    for key, attr, label in _TOKEN_FIELDS:
        count = getattr(usage, attr)
        price = prices.per_million_tokens.get(key, 0.0)  # type: ignore[call-overload]  # key is one of the Literal names
        if count and price:
            lines.append(
                CostLine("provider", source, label, count, price, 1e6, "M", count * price / 1e6)
            )
    for key, attr, label in _MINUTE_FIELDS:
        minutes = getattr(usage, attr) / 60.0
        price = prices.per_minute.get(key, 0.0)  # type: ignore[call-overload]  # key is one of the Literal names
        if minutes and price:
            lines.append(
                CostLine("provider", source, label, minutes, price, 1.0, "min", minutes * price)
            )
    if usage.tts_characters and prices.per_thousand_characters:
        price = prices.per_thousand_characters
        chars = usage.tts_characters
        lines.append(
            CostLine(
                "provider",
                source,
                "TTS characters",
                chars,
                price,
                1000.0,
                "1K chars",
                chars * price / 1000.0,
            )
        )
    return lines


def estimate_call_cost(
    catalog: Catalog,
    *,
    provider: str | None,
    model: str | None,
    usage: Usage | None,
    carrier: str | None,
    carrier_seconds: float,
    round_up_carrier_minutes: bool = True,
    llm_model: str | None = None,
) -> CostBreakdown:
    """Itemised cost of one call from ``catalog`` prices.

    Args:
        catalog: the providers.yaml catalogue (``settings.catalog``).
        provider: provider name (``"openai"``); None when no provider served the call.
        model: the model used; None = the provider's default model.
        usage: the call's summed usage (None = nothing reported).
        carrier: carrier name (``"twilio"``); None for calls with no carrier (simulations).
        carrier_seconds: the call's billable duration at the carrier.
        round_up_carrier_minutes: bill whole started minutes (the carriers' rule) or exact time.
        llm_model: a segmented pipeline's LLM when not its ``components.llm`` (an agent's
            ``llm_model``). Text tokens are billed at the LLM's catalogue prices when the LLM is
            a catalogue model (``gemini-2.5-pro``), else at the model's own token prices.

    Raises:
        ConfigError: the provider, model, pipeline LLM or carrier is not in the catalogue.
    """
    lines: list[CostLine] = []
    notes: list[str] = []
    if provider is not None:
        entry = catalog.providers.get(provider)
        if entry is None:
            raise ConfigError(f"no prices: provider {provider!r} is not in the catalogue")
        model_name = model or entry.default_model
        model_entry = entry.models.get(model_name)
        if model_entry is None:
            raise ConfigError(
                f"no prices: model {model_name!r} of {provider!r} is not in the catalogue"
            )
        llm = catalog.pipeline_llm(provider, llm_model) if entry.kind == "segmented" else None
        if usage is not None:
            prices = catalog.prices_for(provider, model_name, llm_model)
            lines.extend(_provider_lines(provider, prices, usage))
        for part, component in sorted(entry.components.items()):
            if part == "llm" and llm is not None:
                notes.append(f"{provider} llm {llm[0]} priced at its own token prices")
            else:
                notes.append(
                    f"{provider} {part} component {component} priced with model {model_name}"
                )
    if carrier is not None and carrier_seconds > 0:
        tel = catalog.telephony.get(carrier)
        if tel is None:
            raise ConfigError(f"no prices: carrier {carrier!r} is not in the catalogue")
        price = tel.prices.per_minute.get("call", 0.0)
        minutes = (
            math.ceil(carrier_seconds / 60.0)
            if round_up_carrier_minutes
            else carrier_seconds / 60.0
        )
        if price:
            lines.append(
                CostLine(
                    "telephony",
                    carrier,
                    "call minutes",
                    minutes,
                    price,
                    1.0,
                    "min",
                    minutes * price,
                )
            )
    total = round(sum(line.amount for line in lines), 6)
    return CostBreakdown(tuple(lines), total, "USD", catalog.prices_as_of, tuple(notes))


@dataclass(frozen=True, slots=True)
class ServedUsage:
    """What one provider of a call that failed over used, and the model it was priced at."""

    provider: str
    usage: Usage
    model: str | None = None
    llm_model: str | None = None


def estimate_served_cost(
    catalog: Catalog,
    served: Sequence[ServedUsage],
    *,
    carrier: str | None,
    carrier_seconds: float,
    round_up_carrier_minutes: bool = True,
) -> CostBreakdown:
    """Itemised cost of a call several providers served in turn (a failover): each
    provider's lines at its own prices, the carrier's minutes once, the total their sum.

    Raises:
        ConfigError: a provider, model or the carrier is not in the catalogue.
    """
    parts = [
        estimate_call_cost(
            catalog,
            provider=s.provider,
            model=s.model,
            llm_model=s.llm_model,
            usage=s.usage,
            carrier=None,
            carrier_seconds=0.0,
        )
        for s in served
    ]
    parts.append(
        estimate_call_cost(
            catalog,
            provider=None,
            model=None,
            usage=None,
            carrier=carrier,
            carrier_seconds=carrier_seconds,
            round_up_carrier_minutes=round_up_carrier_minutes,
        )
    )
    lines = tuple(line for part in parts for line in part.lines)
    notes = tuple(note for part in parts for note in part.notes)
    total = round(sum(line.amount for line in lines), 6)
    return CostBreakdown(lines, total, "USD", catalog.prices_as_of, notes)
