"""A small TwiML reader for the simulated caller (twilio.com/docs/voice/twiml).

Only the verbs the caller acts on are modelled; unknown verbs are kept with their name so the
caller can record them as ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # parses TwiML from our own test server
from dataclasses import dataclass, field

__all__ = ["TwimlError", "Verb", "parse_twiml"]


class TwimlError(ValueError):
    """The document is not TwiML Twilio would accept."""


@dataclass(frozen=True, slots=True)
class Verb:
    """One TwiML verb: its tag, attributes, text, and (for Connect/Dial/Start) its nouns."""

    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    text: str = ""
    children: tuple[Verb, ...] = ()

    def parameters(self) -> dict[str, str]:
        """``<Parameter name= value=>`` children as a dict (a Stream's customParameters)."""
        return {
            c.attrs.get("name", ""): c.attrs.get("value", "")
            for c in self.children
            if c.name == "Parameter"
        }


def _verb(el: ET.Element) -> Verb:
    return Verb(
        name=el.tag,
        attrs=dict(el.attrib),
        text=(el.text or "").strip(),
        children=tuple(_verb(c) for c in el),
    )


def parse_twiml(text: str) -> list[Verb]:
    """The verbs of a ``<Response>`` document, in order.

    Raises:
        TwimlError: not XML, or the root is not ``<Response>`` (Twilio error 12100).
    """
    try:
        root = ET.fromstring(text)  # noqa: S314  # trusted: the app under test
    except ET.ParseError as exc:
        raise TwimlError(f"document parse failure: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(f"root element is <{root.tag}>, not <Response>")
    return [_verb(el) for el in root]
