"""Deepgram emulator: live transcription (``/v1/listen``) and Aura TTS (``/v1/speak`` WS + REST).

Independent of the client (written from ``docs/wire/deepgram.md``, whose facts link
https://developers.deepgram.com/reference/speech-to-text/listen-streaming and the Aura pages):
:mod:`.listen` and :mod:`.speak` are pure per-socket cores over plain dicts; :mod:`.server` serves
them on one loopback port.
"""

from switchboard.emulators.deepgram.listen import ListenCore, ListenParams, parse_listen_params
from switchboard.emulators.deepgram.server import IDLE_CLOSE_CODE, DeepgramEmulator, run
from switchboard.emulators.deepgram.speak import SpeakCore, parse_speak_params, synthesize

__all__ = [
    "IDLE_CLOSE_CODE",
    "DeepgramEmulator",
    "ListenCore",
    "ListenParams",
    "SpeakCore",
    "parse_listen_params",
    "parse_speak_params",
    "run",
    "synthesize",
]
