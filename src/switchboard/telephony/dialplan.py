"""Dial policy: which destinations a transfer or an outbound call may reach (toll-fraud guard).

Toll fraud is the bill a caller runs up by talking the model into dialling an expensive
destination (premium-rate numbers, international networks, islands with high termination rates),
or that a leaked API token runs up by dialling them directly. The carrier bills the owner. So
every dial is checked against an allow list the owner wrote, and everything else is refused.

Allow entries (:func:`parse_allow_entry`):

* ``"+14155550100"`` — this number exactly (spaces, dashes, dots and parentheses are dropped);
* ``"+1415*"`` — every number that starts with +1415. A prefix ends in ``*``; a bare
  ``"+1415"`` is refused as too short to be a number, so nobody writes a prefix by accident;
* ``"sip:alice@pbx.example.com"`` — this SIP user (``sip:`` or ``sips:``, any port/parameters);
* ``"sip:*@pbx.example.com"`` or ``"pbx.example.com"`` — any user at this SIP host (exactly this
  host: ``pbx.example.com.evil.net`` and ``a.pbx.example.com`` do not match).

High-cost ranges (:data:`HIGH_COST_RANGES`: premium rate, satellite and international networks,
the countries of the North American plan outside the US and Canada) are refused even when a
broad prefix covers them: ``"+1*"`` reaches +1 415… but not +1 900… nor +1 876… (Jamaica). An
entry inside the range (``"+1876*"`` or ``"+18765550100"``) allows it. The table is a backstop
for broad prefixes, not a complete list of expensive numbers: the allow list is the control.

Theory of operation: everything here is pure. :meth:`DialPlan.check` takes what was asked for
(a directory name, a number or a SIP URI, as text from a model or an API client), resolves a
directory name, parses the destination strictly and returns a :class:`DialDecision` that says
whether it may be dialled and why (for the log, the model and the API's 403);
:func:`require_allowed` raises :class:`~switchboard.errors.DialRefused` instead. Nothing is
dialled or logged here; the callers do that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from switchboard.errors import DialRefused

__all__ = [
    "ANY_USER",
    "HIGH_COST_RANGES",
    "AllowEntry",
    "Destination",
    "DialDecision",
    "DialPlan",
    "parse_allow_entry",
    "parse_destination",
    "refusal_for_model",
    "require_allowed",
]

#: Ranges a broad prefix does not reach: prefix → what it is (for the refusal's reason).
HIGH_COST_RANGES: Mapping[str, str] = {
    "+1900": "US/Canada premium rate (900)",
    "+1242": "Bahamas",
    "+1246": "Barbados",
    "+1264": "Anguilla",
    "+1268": "Antigua and Barbuda",
    "+1284": "British Virgin Islands",
    "+1345": "Cayman Islands",
    "+1441": "Bermuda",
    "+1473": "Grenada",
    "+1649": "Turks and Caicos Islands",
    "+1658": "Jamaica",
    "+1664": "Montserrat",
    "+1721": "Sint Maarten",
    "+1758": "Saint Lucia",
    "+1767": "Dominica",
    "+1784": "Saint Vincent and the Grenadines",
    "+1809": "Dominican Republic",
    "+1829": "Dominican Republic",
    "+1849": "Dominican Republic",
    "+1868": "Trinidad and Tobago",
    "+1869": "Saint Kitts and Nevis",
    "+1876": "Jamaica",
    "+870": "Inmarsat satellite",
    "+881": "global mobile satellite",
    "+882": "international networks",
    "+883": "international networks",
    "+979": "international premium rate",
    "+449": "UK premium rate (09)",
    "+4470": "UK personal numbers (070)",
    "+4487": "UK service numbers (087)",
}

#: ``AllowEntry.sip_user`` of an entry that allows every user at its SIP host.
ANY_USER = "*"

_SEPARATORS = re.compile(r"[\s().-]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PREFIX = re.compile(r"^\+[1-9]\d{0,13}$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_USER = re.compile(r"^[a-z0-9_.+-]{1,64}$")
_PARAMS = re.compile(r"^(?:;[a-z0-9_.-]+(?:=[a-z0-9_.-]+)?)*$")
_EXAMPLES = (
    "a number (+14155550100), a prefix (+1415*), a SIP URI (sip:alice@pbx.example.com) "
    "or a SIP host (pbx.example.com)"
)


@dataclass(frozen=True, slots=True)
class Destination:
    """A parsed dial target.

    Attributes:
        uri: what goes to the carrier: ``"+14155550100"`` or ``"sip:alice@pbx.example.com"``
            (scheme and host in lower case; port and parameters kept).
        number: the E.164 number, for a phone number.
        sip_user: the SIP user part (lower case), when the URI has one.
        sip_host: the SIP host (lower case), for a SIP URI.
    """

    uri: str
    number: str | None = None
    sip_user: str | None = None
    sip_host: str | None = None


def _number(text: str) -> str:
    body = text[4:] if text[:4].lower() == "tel:" else text
    return _SEPARATORS.sub("", body)


def parse_destination(text: str) -> Destination:
    """Parse a phone number (E.164, separators allowed) or a ``sip:``/``sips:`` URI strictly.

    SIP URIs may carry a port and ``;name=value`` parameters but no ``?headers``, percent
    escapes or IPv6 hosts: nothing a carrier could read as a second destination.

    Raises:
        ValueError: ``text`` is neither; the message says what was expected.
    """
    text = text.strip()
    if _is_sip(text):
        return _parse_sip(text)
    number = _number(text)
    if _E164.match(number):
        return Destination(uri=number, number=number)
    raise ValueError(
        f"{text[:80]!r} is not a phone number in E.164 form (+ country code and number, "
        "e.g. +14155550100) or a SIP URI (sip:user@host)"
    )


def _is_sip(text: str) -> bool:
    return text.lower().startswith(("sip:", "sips:"))


def _parse_sip(text: str) -> Destination:
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    user, at, hostpart = rest.rpartition("@")
    user = user.lower()
    address, semi, params = hostpart.partition(";")
    host, colon, port = address.partition(":")
    host = host.lower()
    if (
        (at and not _USER.match(user))
        or not _HOST.match(host)
        or (colon and not (port.isdigit() and 0 < int(port) < 65536))
        or (semi and not _PARAMS.match(";" + params.lower()))
    ):
        raise ValueError(
            f"{text[:80]!r} is not a plain SIP URI (sip:user@host[:port][;param=value])"
        )
    uri = f"{scheme}:{user + '@' if at else ''}{host}{colon}{port}{semi}{params}"
    return Destination(uri=uri, sip_user=user if at else None, sip_host=host)


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One allow-list entry, parsed (see the module docstring for the forms).

    Attributes:
        text: the entry as written (for reasons and logs).
        kind: ``"number"`` (exact), ``"prefix"`` or ``"sip"``.
        value: the number, the prefix (without ``*``) or the SIP host.
        sip_user: for ``"sip"``, the one user allowed (None: the URI has no user part), or
            :data:`ANY_USER` for every user at the host.
    """

    text: str
    kind: Literal["number", "prefix", "sip"]
    value: str
    sip_user: str | None = None

    def matches(self, destination: Destination) -> bool:
        """Whether this entry lets ``destination`` through (high-cost ranges aside)."""
        match self.kind:
            case "number":
                return destination.number == self.value
            case "prefix":
                return destination.number is not None and destination.number.startswith(self.value)
            case "sip":
                return destination.sip_host == self.value and self.sip_user in (
                    ANY_USER,
                    destination.sip_user,
                )


def parse_allow_entry(text: str) -> AllowEntry:
    """Parse one allow-list entry.

    Raises:
        ValueError: not an entry; the message says why and what the forms are.
    """
    entry = text.strip()
    if entry in ("", "*", "+*") or entry.lower().startswith(("sip:*@*", "sips:*@*")):
        raise ValueError(f"{entry!r} would allow every destination; list {_EXAMPLES}")
    if entry.startswith("+") or entry[:4].lower() == "tel:":
        return _number_entry(entry)
    if not _is_sip(entry):
        return _host_entry(entry, entry)
    rest = entry.partition(":")[2]
    if rest.startswith("*@"):
        return _host_entry(entry, rest[2:])
    if ";" in rest or ":" in rest.rpartition("@")[2]:
        raise ValueError(f"{entry!r}: an allow entry names a SIP user and host, no port or ;params")
    try:
        destination = _parse_sip(entry)
    except ValueError:
        raise ValueError(f"{entry!r} is not a SIP URI such as sip:alice@pbx.example.com") from None
    assert destination.sip_host is not None
    return AllowEntry(entry, "sip", destination.sip_host, destination.sip_user)


def _number_entry(entry: str) -> AllowEntry:
    number = _number(entry)
    if number.endswith("*"):
        if not _PREFIX.match(number[:-1]):
            raise ValueError(f"{entry!r} is not a number prefix such as '+1415*'")
        return AllowEntry(entry, "prefix", number[:-1])
    if _E164.match(number):
        return AllowEntry(entry, "number", number)
    if _PREFIX.match(number):
        raise ValueError(
            f"{entry!r} is not a full E.164 number; write '{number}*' to allow every number "
            "starting with it"
        )
    raise ValueError(f"{entry!r} is not {_EXAMPLES}")


def _host_entry(entry: str, host: str) -> AllowEntry:
    if not _HOST.match(host.lower()) or "." not in host:
        raise ValueError(f"{entry!r} is not {_EXAMPLES}")
    return AllowEntry(entry, "sip", host.lower(), ANY_USER)


@dataclass(frozen=True, slots=True)
class DialDecision:
    """What :meth:`DialPlan.check` decided.

    Attributes:
        requested: what was asked for, as given.
        allowed: whether it may be dialled.
        destination: the carrier destination (directory name resolved), when it parsed.
        reason: why, in words fit for the log, the model and an API error.
    """

    requested: str
    allowed: bool
    destination: str | None
    reason: str


class DialPlan:
    """An allow list, plus named destinations; everything else is refused.

    Args:
        allow: allow entries (strings in the forms of the module docstring).
        directory: names → destinations (an agent's ``directory``); the names resolve and the
            destinations are allowed exactly.

    Raises:
        ValueError: an entry or a directory destination does not parse (all problems named).
    """

    def __init__(
        self, allow: Iterable[str] = (), *, directory: Mapping[str, str] | None = None
    ) -> None:
        problems: list[str] = []
        self._entries: list[AllowEntry] = []
        self._directory: dict[str, Destination] = {}
        for text in allow:
            try:
                self._entries.append(parse_allow_entry(text))
            except ValueError as exc:
                problems.append(str(exc))
        for name, target in (directory or {}).items():
            try:
                destination = parse_destination(target)
            except ValueError as exc:
                problems.append(f"directory {name!r}: {exc}")
                continue
            self._directory[name.strip().lower()] = destination
            self._entries.append(_exact(f"directory {name!r}", destination))
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def names(self) -> list[str]:
        """The directory's names (lower case, sorted): what a model may ask for by name."""
        return sorted(self._directory)

    @property
    def denies_all(self) -> bool:
        """True when nothing at all may be dialled (no entries, no directory)."""
        return not self._entries

    def check(self, requested: str) -> DialDecision:
        """Decide whether ``requested`` (a directory name, number or SIP URI) may be dialled."""
        text = requested.strip()
        destination = self._directory.get(text.lower())
        if destination is None:
            try:
                destination = parse_destination(text)
            except ValueError as exc:
                return DialDecision(requested, False, None, str(exc))
        uri = destination.uri
        matching = [entry for entry in self._entries if entry.matches(destination)]
        if not matching:
            return DialDecision(requested, False, uri, f"{uri} is not on the allow list")
        costly = _high_cost_range(destination)
        if costly is not None:
            prefix, what = costly
            specific = [entry for entry in matching if entry.value.startswith(prefix)]
            if not specific:
                return DialDecision(
                    requested,
                    False,
                    uri,
                    f"{uri} is in a high-cost range ({prefix}, {what}) that a broad prefix "
                    f"does not reach; only an entry of its own (such as '{prefix}*') allows it",
                )
            matching = specific
        return DialDecision(requested, True, uri, f"allowed by {matching[0].text!r}")


def require_allowed(plan: DialPlan, requested: str) -> str:
    """The destination to dial for ``requested``, or :class:`DialRefused` with the reason."""
    decision = plan.check(requested)
    if not decision.allowed or decision.destination is None:
        raise DialRefused(requested, decision.reason)
    return decision.destination


def refusal_for_model(decision: DialDecision, names: list[str]) -> str:
    """The tool error a model gets for a refused transfer: why, and what it may ask for."""
    where = (
        f"You can transfer to: {', '.join(names)}."
        if names
        else "Tell the caller you cannot transfer them to that destination."
    )
    asked = decision.requested.strip()[:80]
    return f"transfer to {asked!r} is not allowed: {decision.reason}. {where}"


def _exact(text: str, destination: Destination) -> AllowEntry:
    if destination.number is not None:
        return AllowEntry(text, "number", destination.number)
    assert destination.sip_host is not None  # parse_destination gives a number or a SIP host
    return AllowEntry(text, "sip", destination.sip_host, destination.sip_user)


def _high_cost_range(destination: Destination) -> tuple[str, str] | None:
    number = destination.number
    if number is None:
        return None
    for prefix, what in HIGH_COST_RANGES.items():
        if number.startswith(prefix):
            return prefix, what
    return None
