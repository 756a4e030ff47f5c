"""A call's audio recording, wired to the gateway: opened with the session, finished at the end.

An agent with ``recording: {enabled: true}`` gets a :class:`~switchboard.recordings.CallRecording`
when its media socket opens (the session feeds it); when the call ends, however it ends, the
manager finishes the file and links it from the call's record (``recording_url`` and
``recording`` in ``extra``) before the record is finalised, so the ``call.ended`` webhook
carries the link. A recording that cannot be opened is logged and the call goes on unrecorded.
"""

from __future__ import annotations

import asyncio
import logging

from switchboard.agents import Agent
from switchboard.audio.stereo import RecordingFormat
from switchboard.bridge.recording import CallRecordSink
from switchboard.errors import AudioError
from switchboard.gateway import Gateway
from switchboard.media import AudioSpec
from switchboard.recordings import CallRecording
from switchboard.store import ops

__all__ = ["finish_recording", "open_recording", "recording_url"]

logger = logging.getLogger(__name__)


def recording_url(gateway: Gateway, call_id: str) -> str:
    """Where the API serves ``call_id``'s recording (absolute with ``SWITCHBOARD_PUBLIC_URL``)."""
    base = (gateway.settings.public_url or "").rstrip("/")
    return f"{base}/v1/calls/{call_id}/recording"


def open_recording(
    gateway: Gateway, agent: Agent, call_id: str, carrier: AudioSpec
) -> CallRecording | None:
    """The call's recording when its agent asks for one (None otherwise, or when it cannot be
    opened: logged, the call is taken unrecorded)."""
    policy = agent.recording
    recordings = gateway.recordings
    if policy is None or not policy.enabled or recordings is None:
        return None
    fmt: RecordingFormat = policy.format
    loop = asyncio.get_running_loop()
    try:
        path = recordings.directory.path_for(call_id, fmt, policy.retention_days)
        return CallRecording(
            path,
            fmt,
            carrier,
            lambda: loop.time() * 1000.0,  # the session's clock
            retention_days=policy.retention_days,
            call_id=call_id,
        )
    except (AudioError, OSError, ValueError) as exc:
        logger.error(
            "call %s: cannot record the call: %s", call_id, exc, extra={"call_id": call_id}
        )
        return None


def finish_recording(
    gateway: Gateway, call_id: str, recording: CallRecording | None, sink: CallRecordSink | None
) -> None:
    """Finish the file and link it from the record (idempotent; before the record's end)."""
    if recording is None:
        return
    info = recording.finish()
    if info is None or sink is None:
        return
    sink.recorder.record(
        ops.MergeExtra(
            call_id,
            {"recording_url": recording_url(gateway, call_id), "recording": info.as_dict()},
        )
    )
