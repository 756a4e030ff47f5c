"""A simulated Twilio caller: does to an app what Twilio does on a real phone call.

It signs and posts the voice webhook, follows the TwiML it gets back (``<Say>``, ``<Play>``,
``<Pause>``, ``<Hangup>``, ``<Dial>``, ``<Redirect>``, ``<Connect><Stream>``), opens the media
stream with a signed upgrade, sends ``connected`` + ``start`` (customParameters from the TwiML),
streams a WAV as 20 ms μ-law frames on a clock (real time, or ``speed`` times faster), plays the
server's audio through the emulators' :class:`~switchboard.emulators.playout.Playout` (marks
acknowledged when their audio has played, ``clear`` honoured), records what it hears with
silence where nothing played, sends DTMF on request, ends with ``stop`` and posts status
callbacks. Messages follow twilio.com/docs/voice/media-streams/websocket-messages; this module
shares no code with the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import wave
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import httpx
import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from switchboard.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.audio.resample import Resampler
from switchboard.emulators.twilio.signing import http_form_of, twilio_signature
from switchboard.emulators.twilio.state import CallControl, TwilioCallReport
from switchboard.emulators.twilio.stream import CallerStream
from switchboard.emulators.twilio.twiml import TwimlError, Verb, parse_twiml

__all__ = ["TwilioCaller", "load_ulaw", "new_sid", "write_ulaw_wav"]

logger = logging.getLogger(__name__)


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two letters + 32 hex digits."""
    return prefix + secrets.token_hex(16)


def load_ulaw(audio: Path | str | bytes | None, *, sample_rate: int = 8000) -> bytes:
    """μ-law 8 kHz audio from a WAV file (any rate, mono or stereo), raw PCM16, or 1 s silence."""
    if audio is None:
        return b"\xff" * 8000
    if isinstance(audio, str):
        audio = Path(audio)
    if isinstance(audio, Path):
        with wave.open(str(audio), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise ValueError(f"{audio}: only 16-bit PCM WAV files are supported")
            rate, channels = wav.getframerate(), wav.getnchannels()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
        pcm, sample_rate = samples.tobytes(), rate
    else:
        pcm = audio
    if sample_rate != 8000:
        pcm = Resampler(sample_rate, 8000).process(pcm, last=True)
    return pcm16_to_ulaw(pcm)


def write_ulaw_wav(path: Path, ulaw: bytes) -> None:
    """Write μ-law 8 kHz audio as a 16-bit PCM WAV."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(ulaw_to_pcm16(ulaw))


class TwilioCaller:
    """One simulated call against an app's Twilio webhook.

    Args:
        webhook_url: the voice URL to post (e.g. ``http://127.0.0.1:8000/twilio/voice``).
        auth_token: the key Twilio signs with (the app's ``TWILIO_AUTH_TOKEN``).
        audio: what the caller says: μ-law 8 kHz bytes (see :func:`load_ulaw`).
        account_sid: ``AccountSid`` sent in webhooks.
        from_: caller number; ``to``: called number.
        direction: ``inbound`` or ``outbound-api`` (a call placed through the REST API).
        status_url: where status callbacks go (None: none are posted).
        status_events: which statuses to post (``completed`` always makes sense).
        speed: clock speed factor (1.0 real time; 10.0 ten times faster).
        linger_s: how long to stay on the line once our audio is sent and the server's audio
            (anything but digital silence) has stopped and played out.
        min_linger_s: wall-clock floor on that wait, so a sped-up clock does not hang up while
            the server is still thinking (its latency is wall-clock, not call time).
        max_call_s: call time after which the caller hangs up regardless.
        dtmf: digits to send right after the audio.
        sign_upgrade: ``"https"`` (sign the https form of the stream URL) or ``"wss"``.
        out: where to write what the caller heard (16-bit 8 kHz WAV).
        call_sid: the CallSid to use (the REST emulator passes its own).
        twiml: run this TwiML instead of fetching ``webhook_url`` (REST ``Twiml=``).
    """

    def __init__(
        self,
        *,
        webhook_url: str | None,
        auth_token: str,
        audio: bytes,
        account_sid: str = "AC" + "0" * 32,
        from_: str = "+15005550006",
        to: str = "+15005550001",
        direction: str = "inbound",
        status_url: str | None = None,
        status_events: Iterable[str] = ("completed",),
        speed: float = 1.0,
        linger_s: float = 1.0,
        min_linger_s: float = 0.3,
        max_call_s: float = 60.0,
        dtmf: str = "",
        sign_upgrade: str = "https",
        out: Path | None = None,
        call_sid: str | None = None,
        twiml: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self._token = auth_token
        self.audio = audio
        self.from_, self.to, self.direction = from_, to, direction
        self.status_url = status_url
        self.status_events = set(status_events)
        self.speed = speed
        self.linger_s = linger_s
        self.min_linger_s = min_linger_s
        self.max_call_s = max_call_s
        self.sign_upgrade = sign_upgrade
        self.out = out
        self._initial_twiml = twiml
        self._http = http
        self.dtmf_queue: asyncio.Queue[str] = asyncio.Queue()
        self.pending_dtmf = dtmf
        self.control = CallControl()
        self._status_seq = 0
        self.timeline = bytearray()
        self.report = TwilioCallReport(call_sid=call_sid or new_sid("CA"), account_sid=account_sid)
        self.status = "queued"
        self.started_at: float | None = None
        #: ``AnsweredBy`` for the voice webhook (synchronous machine detection), if any
        self.answered_by: str | None = None
        #: when the caller's voice started (the first stream): later legs go on from there
        self.audio_t0: float | None = None
        #: the REST emulator's conferences: ``<Dial><Conference>`` joins one (None: recorded
        #: as dialled only)
        self.conference_hook: Callable[[TwilioCaller, Verb], Awaitable[None]] | None = None

    # -- control (from tests or the REST emulator) -------------------------------------------------
    def send_dtmf(self, digits: str) -> None:
        """Press ``digits`` on the keypad (sent on the live stream, one ``dtmf`` per digit)."""
        for d in digits:
            self.dtmf_queue.put_nowait(d)

    def hang_up(self) -> None:
        """End the call (REST ``Status=completed``)."""
        self.control.hangup = True
        self.control.event.set()

    def redirect(self, *, twiml: str | None = None, url: str | None = None) -> None:
        """Run new TwiML (REST update with ``Twiml=`` or ``Url=``): the live stream stops."""
        self.control.twiml, self.control.url = twiml, url
        self.control.event.set()

    # -- the call ----------------------------------------------------------------------------------
    async def run(self) -> TwilioCallReport:
        """Place the call and follow it to the end; returns the report."""
        client = self._http or httpx.AsyncClient(timeout=10.0)
        self._client = client
        t0 = time.monotonic()
        self.started_at = t0
        try:
            for early in ("initiated", "ringing"):
                self.status = early
                await self._post_status(early)
            self.status = "in-progress" if self.direction != "inbound" else "ringing"
            if self._initial_twiml is not None:
                twiml: str | None = self._initial_twiml
            else:
                assert self.webhook_url is not None
                twiml = await self._fetch(self.webhook_url)
            self.status = "in-progress"
            await self._post_status("in-progress")
            depth = 0
            while twiml is not None and depth < 10:
                depth += 1
                twiml = await self._execute(twiml)
        except (httpx.HTTPError, TwimlError) as exc:
            self.report.outcome = f"failed: {type(exc).__name__}: {exc}"
            logger.warning("simulated Twilio call failed: %s", exc)
        finally:
            self.report.call_ms = (time.monotonic() - t0) * 1000.0 * self.speed
            self.status = "completed"
            await self._post_status("completed")
            if self._http is None:
                await client.aclose()
            if self.out is not None:
                write_ulaw_wav(self.out, bytes(self.timeline))
                self.report.recording = self.out
        return self.report

    def _params(self, status: str) -> list[tuple[str, str]]:
        r = self.report
        return [
            ("AccountSid", r.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", r.call_sid),
            ("CallStatus", status),
            ("Called", self.to),
            ("Caller", self.from_),
            ("Direction", self.direction),
            ("From", self.from_),
            ("To", self.to),
        ] + ([("AnsweredBy", self.answered_by)] if self.answered_by else [])

    async def signed_post(self, url: str, params: list[tuple[str, str]]) -> httpx.Response:
        """POST ``params`` to ``url`` signed as Twilio signs webhooks (AMD callbacks)."""
        return await self._post(url, params)

    async def _post(self, url: str, params: list[tuple[str, str]]) -> httpx.Response:
        headers = {
            "X-Twilio-Signature": twilio_signature(self._token, url, params),
            # the same token on a retry: the app can tell a retried request from a new one
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            "User-Agent": "TwilioProxy/1.1",
        }
        try:
            return await self._client.post(url, data=dict(params), headers=headers)
        except httpx.RemoteProtocolError:
            # The connection closed before any answer: a pooled keep-alive connection the
            # server (or a balancer, when a node behind it died) had just closed. Twilio
            # retries a webhook whose connection failed, with the same idempotency token.
            return await self._client.post(url, data=dict(params), headers=headers)

    async def _fetch(self, url: str) -> str | None:
        resp = await self._post(url, self._params(self.status))
        self.report.webhook_status = resp.status_code
        if resp.status_code != 200:
            # Twilio says "an application error has occurred" and hangs up.
            self.report.outcome = f"webhook HTTP {resp.status_code}"
            return None
        ctype = resp.headers.get("content-type", "")
        if "xml" not in ctype:
            self.report.violations.append(f"webhook answered Content-Type {ctype!r}")
        return resp.text

    async def _post_status(self, status: str) -> None:
        if not self.status_url or status not in self.status_events:
            return
        self._status_seq += 1
        params = [*self._params(status), ("SequenceNumber", str(self._status_seq - 1))]
        params += [("CallbackSource", "call-progress-events"), ("Timestamp", time.ctime())]
        if status == "completed":
            params.append(("CallDuration", str(round(self.report.call_ms / 1000))))
        try:
            resp = await self._post(self.status_url, params)
        except httpx.HTTPError as exc:  # Twilio logs a failed callback; the call goes on
            logger.info("status callback to %s failed: %s", self.status_url, exc)
            self.report.webhooks.append((status, 0))
            return
        self.report.webhooks.append((status, resp.status_code))

    async def _execute(self, twiml: str) -> str | None:
        """Run one TwiML document; returns the next document to run (Redirect), if any."""
        for verb in parse_twiml(twiml):
            match verb.name:
                case "Say":
                    self.report.said.append(verb.text)
                case "Play":
                    digits = verb.attrs.get("digits", "")
                    self.report.digits_played += digits
                    # the tones take time: ~0.1 s a key and its gap, 0.5 s a "w"
                    # (twilio.com/docs/voice/twiml/play#attributes-digits)
                    waits = digits.lower().count("w")
                    await asyncio.sleep((0.5 * waits + 0.1 * (len(digits) - waits)) / self.speed)
                case "Pause":
                    wait_s = float(verb.attrs.get("length", "1")) / self.speed
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.control.event.wait(), timeout=wait_s)
                    if self.control.event.is_set():
                        return await self._after_control()
                case "Hangup":
                    self.report.outcome = "hangup by TwiML"
                    return None
                case "Reject":  # reason "rejected" (the default) or "busy", nothing else
                    reason = verb.attrs.get("reason", "rejected")
                    if reason not in ("rejected", "busy"):
                        self.report.violations.append(f"<Reject> with reason {reason!r}")
                    self.report.outcome = f"rejected: {reason}"
                    return None
                case "Dial" if self.conference_hook is not None and any(
                    c.name == "Conference" for c in verb.children
                ):
                    room = next(c for c in verb.children if c.name == "Conference")
                    self.report.outcome = "conference"
                    await self.conference_hook(self, room)
                    return None
                case "Dial":
                    self.report.dialed.append(
                        verb.text or ",".join(c.text for c in verb.children) or ""
                    )
                    self.report.outcome = "dialed"
                    return None
                case "Redirect":
                    return await self._fetch(verb.text)
                case "Connect":
                    nxt = await self._connect(verb)
                    if nxt is not None or self.report.outcome != "server closed":
                        return nxt
                case other:
                    self.report.violations.append(f"unsupported TwiML verb <{other}>")
        if self.report.outcome == "unknown":
            self.report.outcome = "twiml ended"
        return None

    async def _connect(self, verb: Verb) -> str | None:
        streams = [c for c in verb.children if c.name == "Stream"]
        if not streams or "url" not in streams[0].attrs:
            self.report.violations.append("<Connect> without <Stream url>")
            return None
        stream = streams[0]
        url = stream.attrs["url"]
        # twilio.com/docs/api/errors/31920 and 31922: no query string, wss only (plain ws is
        # tolerated here so tests can run on loopback without TLS).
        if "?" in url:
            self.report.violations.append("31920: <Stream> url carries a query string")
        if not url.startswith(("wss://", "ws://")):
            self.report.violations.append(f"31922: <Stream> url scheme not wss: {url[:16]}")
            return None
        signed = http_form_of(url) if self.sign_upgrade == "https" else url
        headers = {"X-Twilio-Signature": twilio_signature(self._token, signed)}
        params = stream.parameters()
        self.report.custom_parameters = params
        try:
            async with connect(url, additional_headers=headers, max_size=2**20) as ws:
                await CallerStream(self, ws, params).run()
        except (OSError, ConnectionClosed) as exc:
            self.report.outcome = f"stream failed: {type(exc).__name__}"
        except InvalidStatus as exc:  # the upgrade refused (a balancer with no node up: 503)
            # Twilio logs a stream error (31920 family) and requests the <Connect action>
            self.report.outcome = f"stream refused: HTTP {exc.response.status_code}"
        except InvalidHandshake as exc:  # closed before any answer (a balancer whose node died)
            self.report.outcome = f"stream failed: {type(exc).__name__}"
        if self.control.event.is_set():
            return await self._after_control()
        if self.report.outcome == "caller hung up":
            return None  # the call is over: no action request
        return await self._connect_action(verb)

    async def _connect_action(self, verb: Verb) -> str | None:
        """The ``<Connect action>`` request made when the stream ended with the call up
        (twilio.com/docs/voice/twiml/connect#action): Twilio's standard request parameters,
        POST unless ``method="GET"``; the TwiML answered is run next. None without an action
        (the document goes on; here, as nothing follows, the call ends)."""
        action = verb.attrs.get("action")
        if not action:
            return None
        if verb.attrs.get("method", "POST").upper() != "POST":
            self.report.violations.append("<Connect method=GET> is not emulated")
            return None
        try:
            resp = await self._post(action, self._params(self.status))
        except httpx.HTTPError as exc:
            self.report.actions.append((action, 0))
            self.report.outcome = f"action failed: {type(exc).__name__}"
            return None
        self.report.actions.append((action, resp.status_code))
        if resp.status_code != 200:
            self.report.outcome = f"action HTTP {resp.status_code}"
            return None
        return resp.text

    async def _after_control(self) -> str | None:
        """Act on a REST update: hang up (None) or the TwiML to run next."""
        ctl = self.control
        ctl.event.clear()
        if ctl.hangup:
            self.report.outcome = "hangup by REST"
            return None
        twiml, url = ctl.twiml, ctl.url
        ctl.twiml = ctl.url = None
        self.report.outcome = "redirected"
        return twiml if twiml is not None else await self._fetch(url or "")
