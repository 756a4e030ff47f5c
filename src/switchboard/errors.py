"""Exceptions raised by switchboard.

Every error the library raises derives from :class:`SwitchboardError`, so callers can catch
one type at the boundary. Third-party exceptions are translated where they cross into our code
(``raise ProviderError(...) from exc``)::

    SwitchboardError
    ├── ConfigError                 bad or missing configuration (names the variable or key)
    ├── AudioError                  audio that cannot be decoded, converted or framed
    ├── ProtocolError
    │   ├── LocalProtocolError      we used a wire protocol wrongly (a bug on our side)
    │   └── RemoteProtocolError     the peer broke the protocol (malformed JSON, unknown frame)
    ├── ProviderError               a voice provider failed (connect, session, upstream error)
    │   ├── InvalidStateTransition  an operation not allowed in the provider's current state
    │   └── UnsupportedOperation    an operation this provider cannot do (``say`` on some)
    ├── TelephonyError              a carrier failed (REST call control, media stream)
    │   ├── SignatureError          a webhook or media upgrade whose signature did not verify
    │   └── CallerDisconnected      the carrier's media socket is gone (the caller hung up)
    ├── DialRefused                 the dial policy refused a destination (toll-fraud guard)
    ├── ToolError                   a tool (function) could not be registered or invoked
    ├── StoreError                  call records could not be read or written
    └── ClusterUnavailable          the shared state of a cluster (Redis) cannot be reached
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "CallerDisconnected",
    "ClusterUnavailable",
    "ConfigError",
    "DialRefused",
    "InvalidStateTransition",
    "LocalProtocolError",
    "ProtocolError",
    "ProviderError",
    "RemoteProtocolError",
    "SignatureError",
    "StoreError",
    "SwitchboardError",
    "TelephonyError",
    "ToolError",
    "UnsupportedOperation",
]


class SwitchboardError(Exception):
    """Root of every error switchboard raises."""


class ConfigError(SwitchboardError):
    """Configuration is missing or invalid.

    Attributes:
        missing: names of environment variables that must be set, when that is the cause.
    """

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class DialRefused(SwitchboardError):
    """A transfer or outbound call to a destination the dial policy does not allow.

    Attributes:
        requested: what was asked for (as given).
        reason: why it was refused (never a secret; fit for logs and API errors).
    """

    def __init__(self, requested: str, reason: str) -> None:
        super().__init__(f"dialling {requested.strip()[:80]!r} is not allowed: {reason}")
        self.requested = requested
        self.reason = reason


class AudioError(SwitchboardError, ValueError):
    """Audio that cannot be decoded, converted or framed (odd byte count, unknown rate...)."""


class ProtocolError(SwitchboardError):
    """A wire protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol does not allow in the current state."""


class RemoteProtocolError(ProtocolError):
    """The remote peer sent something the protocol does not allow (malformed or unexpected)."""


class ProviderError(SwitchboardError):
    """A voice provider failed.

    Attributes:
        code: the provider's own error code when it sent one (e.g. ``invalid_request_error``).
        fatal: whether the session cannot continue.
    """

    def __init__(self, message: str, *, code: str | None = None, fatal: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.fatal = fatal


class InvalidStateTransition(ProviderError):
    """An operation was attempted in a provider state that does not allow it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_state", fatal=False)


class UnsupportedOperation(ProviderError):
    """The provider cannot do this at all (e.g. speak arbitrary text); the session goes on."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unsupported", fatal=False)


class TelephonyError(SwitchboardError):
    """A carrier operation failed.

    Attributes:
        status: the HTTP status of the carrier's answer, when there was one.
        code: the carrier's own error code (Twilio ``20404``, Telnyx ``90018``...).
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SignatureError(TelephonyError):
    """A webhook or media-stream upgrade failed signature or token verification."""


class CallerDisconnected(TelephonyError):
    """The carrier's media socket is closed: the caller hung up or the stream was torn down.

    Raised by a :class:`~switchboard.telephony.base.MediaSocket` (the app's adapter translates
    the web framework's own disconnect error into it), so the bridge knows no web framework.
    """


class ToolError(SwitchboardError):
    """A tool could not be registered, validated or invoked."""


class StoreError(SwitchboardError):
    """Call records could not be read or written."""


class ClusterUnavailable(SwitchboardError):
    """The cluster's shared state (Redis) did not answer or refused an operation.

    The message names the operation and the server (host, port, database; never credentials);
    the client library's exception is the ``__cause__``. The client reconnects by itself when
    the server is back, so the next operation may succeed.
    """
