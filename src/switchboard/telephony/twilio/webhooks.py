"""Twilio webhook security (``X-Twilio-Signature``), replay guard, and the TwiML we answer with.

Signature algorithm (twilio.com/docs/usage/webhooks/webhooks-security; twilio-python 9.13
``twilio/request_validator.py``, which the tests check this module against, both directions):

1. ``s`` = the full URL Twilio requested (scheme, host, path and query string);
2. form POSTs: for each parameter name in sorted order, for each of its distinct values in sorted
   order, append ``name + value``; JSON POSTs carry ``bodySHA256=<hex>`` in the query instead and
   are signed with no parameters (the body must hash to that value);
3. ``base64(HMAC-SHA1(auth_token, s))``, or HMAC-SHA256 with a SharedKey secret when the request
   carries ``X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=HMAC_SHA256``;
4. Twilio is inconsistent about default ports, so the URL is tried with and without them.

Replays: Twilio signs no timestamp, so a captured request stays valid forever. :class:`ReplayGuard`
remembers the digest of what each accepted request's signature covers (:func:`signed_payload`:
the URL and the sorted form parameters; nothing unsigned, such as Twilio's
``I-Twilio-Idempotency-Token``, which anyone can change) for ``ttl_s`` and refuses an identical
one. The routes record a request before they start working on it and forget it if that work
fails, so Twilio's retries of a failed request pass. The voice route also refuses a second call
for a CallSid it already answered (see ``switchboard.app.twilio``); our own DTMF redirect back
to the voice webhook is told apart by a timestamped ``resume`` parameter (:func:`resume_value`).
The guard is per process: several workers behind a balancer need a shared store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit
from xml.sax.saxutils import escape, quoteattr

from switchboard.security import same_secret

__all__ = [
    "HMAC_SHA1",
    "HMAC_SHA256",
    "ReplayGuard",
    "busy_twiml",
    "compute_signature",
    "dial_twiml",
    "hangup_twiml",
    "play_digits_twiml",
    "reject_twiml",
    "resume_is_fresh",
    "resume_value",
    "signature_algorithm",
    "signed_payload",
    "stream_twiml",
    "url_variants",
    "validate_signature",
]

HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"
_DIGESTS = {HMAC_SHA1: "sha1", HMAC_SHA256: "sha256"}
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def _pairs(params: Params | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named by ``X-Twilio-Webhooks-Signature-Settings`` (HMAC_SHA1 when absent)."""
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return HMAC_SHA1


def compute_signature(
    key: str, url: str, params: Params | None = None, *, algorithm: str = HMAC_SHA1
) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for ``url`` + form ``params``.

    Args:
        key: the account Auth Token (HMAC_SHA1) or SharedKey secret (HMAC_SHA256).
        url: the exact URL requested, query string included.
        params: form parameters (a mapping, or pairs for repeated names).
        algorithm: ``HMAC_SHA1`` or ``HMAC_SHA256``.

    Raises:
        ValueError: an unknown algorithm.
    """
    digest = _DIGESTS.get(algorithm.upper())
    if digest is None:
        raise ValueError(f"unsupported webhook signature algorithm {algorithm!r}")
    mac = hmac.new(key.encode("utf-8"), signed_payload(url, params).encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def signed_payload(url: str, params: Params | None = None) -> str:
    """The text a Twilio signature covers: ``url``, then each name + distinct value, sorted.

    Two requests with the same payload carry the same signature, however their bodies are
    encoded (parameter order, repeated values), so this is what identifies a replay.
    """
    grouped: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        grouped.setdefault(name, set()).add(value)
    parts = [url]
    for name in sorted(grouped):
        parts.extend(name + value for value in sorted(grouped[name]))
    return "".join(parts)


def url_variants(url: str) -> list[str]:
    """``url`` as given, without its port, and with the scheme's default port (deduplicated)."""
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # not a port number: no variant can be what was signed but the URL itself
        return [url]
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    bare = urlunsplit(parts._replace(netloc=prefix + host))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port}")) if port else bare
    out: list[str] = []
    for candidate in (url, bare, with_port):
        if candidate not in out:
            out.append(candidate)
    return out


def validate_signature(
    key: str,
    urls: Sequence[str],
    params: Params | None,
    signature: str | None,
    *,
    algorithm: str = HMAC_SHA1,
    body: bytes | None = None,
) -> bool:
    """Whether ``signature`` is Twilio's for one of ``urls`` (each tried with/without port).

    Args:
        key: Auth Token or SharedKey secret.
        urls: the URL forms the request may have been signed over (usually one).
        params: the form parameters (ignored for JSON bodies, see below).
        signature: the ``X-Twilio-Signature`` header value.
        algorithm: from :func:`signature_algorithm`.
        body: the raw body of a JSON webhook; when the URL carries ``bodySHA256`` the body must
            hash to it and the signature covers the URL alone.
    """
    if not signature or algorithm.upper() not in _DIGESTS:
        return False
    for url in urls:
        try:
            query = parse_qs(urlsplit(url).query)
        except ValueError:  # not a URL (an unclosed IPv6 bracket): nothing was signed over it
            continue
        signed_params: Params | None = params
        if "bodySHA256" in query:
            if body is None:
                return False
            expected = hashlib.sha256(body).hexdigest()
            if not same_secret(query["bodySHA256"][0], expected):
                return False
            signed_params = None
        for candidate in url_variants(url):
            computed = compute_signature(key, candidate, signed_params, algorithm=algorithm)
            if same_secret(signature, computed):
                return True
    return False


class ReplayGuard:
    """Remembers accepted webhook requests for ``ttl_s`` and refuses identical ones (pure).

    Args:
        ttl_s: how long a request is remembered (Twilio retries within seconds).
        max_entries: memory bound; the oldest entries go first.
    """

    def __init__(self, *, ttl_s: float = 600.0, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def key(*parts: str | bytes | None) -> str:
        """A digest of the request's identifying parts."""
        h = hashlib.sha256()
        for part in parts:
            data = b"" if part is None else part if isinstance(part, bytes) else part.encode()
            h.update(len(data).to_bytes(8, "big") + data)
        return h.hexdigest()

    def seen(self, key: str, *, now: float | None = None) -> bool:
        """True if ``key`` was remembered within ``ttl_s``."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        return key in self._seen

    def remember(self, key: str, *, now: float | None = None) -> None:
        """Record ``key`` as accepted."""
        now = time.monotonic() if now is None else now
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)

    def add(self, key: str, *, now: float | None = None) -> bool:
        """Remember ``key``; False if it was already remembered (a replay).

        One step with no ``await`` in between, so concurrent copies of a request cannot both
        pass: call it before working on the request, and :meth:`forget` if the work fails.
        """
        if self.seen(key, now=now):
            return False
        self.remember(key, now=now)
        return True

    def forget(self, key: str) -> None:
        """Drop ``key`` (its request failed, so Twilio's retry must pass)."""
        self._seen.pop(key, None)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest_key, at = next(iter(self._seen.items()))
            if now - at <= self.ttl_s:
                break
            del self._seen[oldest_key]


# -- TwiML (twilio.com/docs/voice/twiml) -----------------------------------------------------------
def _response(inner: str) -> str:
    return f"{_XML_HEAD}<Response>{inner}</Response>"


def stream_twiml(
    url: str, parameters: Mapping[str, str] | None = None, *, action: str | None = None
) -> str:
    """``<Connect><Stream url=…>`` with ``<Parameter>``s: a bidirectional media stream.

    The parameters arrive in the ``start`` message as ``customParameters``
    (twilio.com/docs/voice/twiml/stream#custom-parameters). ``action``: the URL Twilio
    requests when the stream ends with the call still up (twilio.com/docs/voice/twiml/connect).
    """
    params = "".join(
        f"<Parameter name={quoteattr(k)} value={quoteattr(v)} />"
        for k, v in (parameters or {}).items()
    )
    connect = f"<Connect action={quoteattr(action)}>" if action else "<Connect>"
    return _response(f"{connect}<Stream url={quoteattr(url)}>{params}</Stream></Connect>")


def reject_twiml(message: str) -> str:
    """``<Say>message</Say><Hangup/>``: end a call we cannot take, politely."""
    return _response(f"<Say>{escape(message)}</Say><Hangup />")


def busy_twiml() -> str:
    """``<Reject reason="busy"/>``: refuse an incoming call unanswered, with a busy signal
    (twilio.com/docs/voice/twiml/reject); Twilio bills nothing for it."""
    return _response('<Reject reason="busy" />')


def hangup_twiml() -> str:
    return _response("<Hangup />")


def dial_twiml(destination: str, *, caller_id: str | None = None) -> str:
    """``<Dial>`` to a phone number (``<Number>``) or a SIP URI (``<Sip>``)."""
    # Both URI schemes are SIP endpoints: a ``sips:`` (TLS) URI put in <Number> would be dialled
    # as a malformed phone number.
    noun = "Sip" if destination.lower().startswith(("sip:", "sips:")) else "Number"
    attrs = f" callerId={quoteattr(caller_id)}" if caller_id else ""
    return _response(f"<Dial{attrs}><{noun}>{escape(destination)}</{noun}></Dial>")


def resume_value(*, now: float | None = None) -> str:
    """The ``resume`` query value of our DTMF redirect: ``<unix time>.<random>``.

    The voice route answers a CallSid again only for a fresh ``resume``, so a captured redirect
    cannot open a new stream later; the random part makes each redirect a distinct request.
    """
    stamp = int(time.time() if now is None else now)
    return f"{stamp}.{secrets.token_hex(6)}"


def resume_is_fresh(value: str | None, *, window_s: float, now: float | None = None) -> bool:
    """Whether ``value`` is a :func:`resume_value` made less than ``window_s`` seconds ago."""
    stamp, sep, nonce = (value or "").partition(".")
    # ASCII digits, at most 12 (a Unix time until the year 33658): int() of a 400-digit stamp
    # would overflow the float subtraction below.
    if not sep or not nonce or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        return False
    age = (time.time() if now is None else now) - int(stamp)
    return -5.0 <= age <= window_s  # a little clock skew between workers is tolerated


def play_digits_twiml(digits: str, *, redirect_url: str | None = None) -> str:
    """``<Play digits=…/>`` (DTMF tones to the far end), then ``<Redirect>`` back to us.

    ``w`` in ``digits`` is a half-second pause (twilio.com/docs/voice/twiml/play#attributes-digits).
    """
    redirect = f'<Redirect method="POST">{escape(redirect_url)}</Redirect>' if redirect_url else ""
    return _response(f"<Play digits={quoteattr(digits)} />{redirect}")
