"""Twilio call control over the REST API 2010-04-01 (twilio.com/docs/voice/api/call-resource).

Form-encoded POSTs with HTTP Basic ``AccountSid:AuthToken``; JSON answers. Errors carry
``{"code", "message", "more_info", "status"}`` and become :class:`TelephonyError` with the HTTP
status and Twilio code (never the token: it travels only in the Authorization header).

Decisions:

* Hang up = update with ``Status=completed``. A call that already ended answers 404/20404 (gone)
  or 400/21220 (not in progress): both count as success, as pipecat does.
* Transfer = update the live call with ``Twiml=<Dial>…</Dial>``; the media stream then stops.
* DTMF: Twilio has no "send digits into a live call" endpoint. We update the call with
  ``<Play digits=…/>`` followed by ``<Redirect>`` to our own voice webhook, which answers with a
  fresh ``<Connect><Stream>`` (new media token) for the same CallSid: the stream drops for the
  time the tones play and reconnects. The redirect URL carries a timestamped nonce
  (``webhooks.resume_value``): the replay guard sees a new request, and the voice route answers
  the already-answered CallSid again only while the nonce is fresh. Needs
  ``SWITCHBOARD_PUBLIC_URL``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx

from switchboard.errors import ConfigError, TelephonyError
from switchboard.telephony.twilio.webhooks import dial_twiml, play_digits_twiml, resume_value

__all__ = ["API_VERSION", "TwilioAdapter"]

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
_ALREADY_ENDED = {"20404", "21220"}


class TwilioAdapter:
    """Call control for Twilio (satisfies ``providers.base.TelephonyAdapter``).

    Args:
        account_sid: ``TWILIO_ACCOUNT_SID``.
        auth_token: ``TWILIO_AUTH_TOKEN``.
        base_url: ``TWILIO_BASE_URL`` (an emulator's ``base_url`` in tests).
        public_url: ``SWITCHBOARD_PUBLIC_URL``: default webhook/status URLs, DTMF reconnects.
        client: an ``httpx.AsyncClient`` to use (not closed by :meth:`aclose`); one is created
            by :meth:`setup` otherwise.
        timeout_s: per-request timeout for the created client.
    """

    name: ClassVar[str] = "twilio"

    def __init__(
        self,
        *,
        account_sid: str | None,
        auth_token: str | None,
        base_url: str = "https://api.twilio.com",
        public_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.base_url = base_url.rstrip("/")
        self.public_url = public_url.rstrip("/") if public_url else None
        self._client = client
        self._owns_client = client is None
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"TwilioAdapter(account_sid={self.account_sid!r}, base_url={self.base_url!r})"

    async def setup(self) -> None:
        """Check the credentials are configured and open the HTTP client.

        Raises:
            ConfigError: ``TWILIO_ACCOUNT_SID`` or ``TWILIO_AUTH_TOKEN`` is missing.
        """
        missing = tuple(
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", self.account_sid),
                ("TWILIO_AUTH_TOKEN", self._auth_token),
            )
            if not value
        )
        if missing:
            names = ", ".join(missing)
            raise ConfigError(f"Twilio is not configured: set {names}", missing=missing)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
            self._owns_client = True

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    # -- operations --------------------------------------------------------------------------------
    async def answer_call(self, call_id: str, **options: Any) -> None:
        """No-op: a Twilio call is answered by the TwiML our voice webhook returns."""
        logger.debug("answer_call(%s): answered by TwiML, nothing to do", call_id)

    async def hang_up(self, call_id: str) -> None:
        """Hang up (``Status=completed``); a call that already ended counts as success."""
        try:
            await self.update_call(call_id, Status="completed")
        except TelephonyError as exc:
            if exc.code in _ALREADY_ENDED:
                logger.info("call %s had already ended (Twilio %s)", call_id, exc.code)
                return
            raise
        logger.info("hung up call %s", call_id)

    async def transfer_call(
        self, call_id: str, destination: str, *, caller_id: str | None = None
    ) -> None:
        """Redirect the live call to ``<Dial>destination</Dial>`` (phone number or ``sip:``)."""
        await self.update_call(call_id, Twiml=dial_twiml(destination, caller_id=caller_id))
        logger.info("transferred call %s", call_id)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """Play ``digits`` to the far end, then reconnect the media stream (see module doc).

        Raises:
            ConfigError: no ``SWITCHBOARD_PUBLIC_URL`` to redirect back to.
        """
        if not digits or any(c not in "0123456789*#wW" for c in digits):
            raise TelephonyError(f"invalid DTMF digits {digits!r}")
        if not self.public_url:
            raise ConfigError(
                "sending DTMF on Twilio needs SWITCHBOARD_PUBLIC_URL",
                missing=("SWITCHBOARD_PUBLIC_URL",),
            )
        back = f"{self.public_url}/twilio/voice?resume={resume_value()}"
        await self.update_call(call_id, Twiml=play_digits_twiml(digits, redirect_url=back))
        logger.info("sent %d DTMF digits on call %s", len(digits), call_id)

    async def place_call(self, *, to: str, from_: str, **options: Any) -> str:
        """Dial out; returns the new CallSid.

        Keyword Args:
            url: the voice webhook Twilio fetches when answered (default our ``/twilio/voice``,
                with ``call_id`` in the query when given).
            twiml: TwiML to run instead of fetching ``url``.
            call_id: our call id, passed to the voice webhook as ``?call_id=``.
            status_callback: default our ``/twilio/status``.
            status_events: default ``("initiated", "ringing", "answered", "completed")``.
            timeout_s: ring timeout in seconds.
            Any other keyword is sent as a Twilio parameter as-is (``MachineDetection="Enable"``).
        """
        data: list[tuple[str, str]] = [("To", to), ("From", from_)]
        url: str | None = options.pop("url", None)
        twiml: str | None = options.pop("twiml", None)
        call_id: str | None = options.pop("call_id", None)
        if twiml is not None:
            data.append(("Twiml", twiml))
        else:
            if url is None and self.public_url:
                url = f"{self.public_url}/twilio/voice"
                if call_id:
                    url += "?" + urlencode({"call_id": call_id})
            if url is None:
                raise ConfigError(
                    "place_call needs url=, twiml= or SWITCHBOARD_PUBLIC_URL",
                    missing=("SWITCHBOARD_PUBLIC_URL",),
                )
            data.append(("Url", url))
        status_cb = options.pop("status_callback", None)
        if status_cb is None and self.public_url:
            status_cb = f"{self.public_url}/twilio/status"
        if status_cb:
            data.append(("StatusCallback", status_cb))
            events = options.pop("status_events", ("initiated", "ringing", "answered", "completed"))
            data.extend(("StatusCallbackEvent", e) for e in events)
        if (timeout := options.pop("timeout_s", None)) is not None:
            data.append(("Timeout", str(int(timeout))))
        data.extend((k, str(v)) for k, v in options.items())
        call = await self._request("POST", "/Calls.json", data)
        sid = str(call["sid"])
        logger.info("placed call %s", sid)
        return sid

    async def update_call(self, call_id: str, **params: str) -> dict[str, Any]:
        """Modify a live call (``Status``, ``Twiml``, ``Url``...); returns the call resource."""
        return await self._request("POST", f"/Calls/{quote(call_id, safe='')}.json", params)

    async def fetch_call(self, call_id: str) -> dict[str, Any]:
        """The call resource (``status``, ``duration``...)."""
        return await self._request("GET", f"/Calls/{quote(call_id, safe='')}.json", None)

    async def add_participant(
        self, conference: str, params: list[tuple[str, str]]
    ) -> dict[str, Any]:
        """Dial a participant into ``conference`` (its SID or friendly name; created if it
        does not exist): twilio.com/docs/voice/api/conference-participant-resource#create-a-
        participant-agent-conference-only. Returns the participant (``call_sid``...)."""
        path = f"/Conferences/{quote(conference, safe='')}/Participants.json"
        return await self._request("POST", path, params)

    async def update_participant(
        self, conference_sid: str, call_sid: str, **params: str
    ) -> dict[str, Any]:
        """Update a participant (``AnnounceUrl``, ``Hold``, ``Muted``...)."""
        c, p = quote(conference_sid, safe=""), quote(call_sid, safe="")
        return await self._request("POST", f"/Conferences/{c}/Participants/{p}.json", params)

    # -- transport ---------------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        data: dict[str, str] | list[tuple[str, str]] | None,
    ) -> dict[str, Any]:
        if self._client is None:
            await self.setup()
        assert self._client is not None
        assert self.account_sid
        assert self._auth_token
        url = f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}{path}"
        headers = {"Accept": "application/json"}
        content: str | None = None
        if data is not None:
            pairs = list(data.items()) if isinstance(data, dict) else data
            content = urlencode(pairs)  # repeated names (StatusCallbackEvent) kept in order
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        auth = (self.account_sid, self._auth_token)
        try:
            try:
                resp = await self._client.request(
                    method, url, content=content, auth=auth, headers=headers
                )
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if method != "GET":
                    raise
                # A pooled connection the server closed as it went idle (a warm transfer's
                # poll after a briefing's seconds of quiet): a GET is safe to send again.
                resp = await self._client.request(method, url, auth=auth, headers=headers)
        except httpx.HTTPError as exc:
            raise TelephonyError(f"Twilio {method} {path} failed: {type(exc).__name__}") from exc
        logger.debug("< Twilio %s %s %d", method, path, resp.status_code)
        try:
            body: Any = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400:
            code = body.get("code") if isinstance(body, dict) else None
            message = body.get("message") if isinstance(body, dict) else None
            raise TelephonyError(
                f"Twilio {method} {path}: HTTP {resp.status_code}"
                + (f", code {code}: {message}" if code is not None else ""),
                status=resp.status_code,
                code=str(code) if code is not None else None,
            )
        if not isinstance(body, dict):
            raise TelephonyError(f"Twilio {method} {path}: answer is not a JSON object")
        return body
