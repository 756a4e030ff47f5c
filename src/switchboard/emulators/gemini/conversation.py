"""What an emulated Live conversation keeps across connections (session resumption)."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.emulators.common import EnergyVAD, Script, ScriptedTurn

__all__ = ["Conversation"]


@dataclass(slots=True)
class Conversation:
    """State that session resumption carries across connections: a setup with
    ``sessionResumption.handle`` continues the conversation the handle names."""

    id: int
    script: Script
    transcript: list[tuple[str, str]] = field(default_factory=list)
    pending_call: tuple[str, ScriptedTurn] | None = None
    audio_bytes: int = 0
    handles: int = 0
    vad: EnergyVAD | None = None  # caller speech detection continues across a resumption
    utterance_bytes: int = 0
    #: the conversation the client gave as context (``clientContent`` without ``turnComplete``)
    given: list[tuple[str, str]] = field(default_factory=list)
