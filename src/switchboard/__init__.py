"""switchboard: put AI voice agents on phone numbers.

The curated public API; see the README for a tour.
"""

from switchboard.__about__ import __version__
from switchboard.config import Settings, load_settings
from switchboard.errors import (
    AudioError,
    ConfigError,
    LocalProtocolError,
    ProviderError,
    RemoteProtocolError,
    SignatureError,
    SwitchboardError,
    TelephonyError,
    ToolError,
)
from switchboard.logs import install_wire_redaction
from switchboard.media import AudioChunk, AudioFormat, AudioSpec, Usage
from switchboard.providers.base import (
    BaseProvider,
    ProviderCapabilities,
    ProviderEvent,
    ProviderEventType,
    RealtimeEndToEndProvider,
    SegmentedVoiceProvider,
    SessionConfig,
    SessionState,
)
from switchboard.providers.registry import (
    ProviderType,
    Requirements,
    TelephonyType,
    get_provider_registry,
)
from switchboard.telephony.base import TelephonyAdapter

__all__ = [
    "AudioChunk",
    "AudioError",
    "AudioFormat",
    "AudioSpec",
    "BaseProvider",
    "ConfigError",
    "LocalProtocolError",
    "ProviderCapabilities",
    "ProviderError",
    "ProviderEvent",
    "ProviderEventType",
    "ProviderType",
    "RealtimeEndToEndProvider",
    "RemoteProtocolError",
    "Requirements",
    "SegmentedVoiceProvider",
    "SessionConfig",
    "SessionState",
    "Settings",
    "SignatureError",
    "SwitchboardError",
    "TelephonyAdapter",
    "TelephonyError",
    "TelephonyType",
    "ToolError",
    "Usage",
    "__version__",
    "get_provider_registry",
    "install_wire_redaction",
    "load_settings",
]
