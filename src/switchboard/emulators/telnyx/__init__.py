"""A simulated Telnyx network: Call Control API, signed webhooks and a caller on the media stream.

Two entry points for the CLI:

* ``await run(host=..., port=...)`` serves :class:`TelnyxEmulator` until cancelled and prints
  its URL and public key (the app's ``TELNYX_BASE_URL`` / ``TELNYX_PUBLIC_KEY``).
* ``await run_call(server=..., audio=..., out=...)`` places one inbound call to the app at
  ``server`` and returns a :class:`TelnyxCallReport`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from switchboard.emulators.loopback import LoopbackServer, bind_loopback
from switchboard.emulators.telnyx.audio import WireFormat, load_pcm16, wav_bytes, write_wav
from switchboard.emulators.telnyx.caller import (
    CallerMediaLeg,
    LegResult,
    MediaLeg,
    MediaLegFactory,
)
from switchboard.emulators.telnyx.calls import EmulatedCall
from switchboard.emulators.telnyx.control import find_emulator, place_remote_call
from switchboard.emulators.telnyx.report import TelnyxCallReport
from switchboard.emulators.telnyx.server import TelnyxEmulator

__all__ = [
    "CallerMediaLeg",
    "EmulatedCall",
    "LegResult",
    "LoopbackServer",
    "MediaLeg",
    "MediaLegFactory",
    "TelnyxCallReport",
    "TelnyxEmulator",
    "WireFormat",
    "bind_loopback",
    "load_pcm16",
    "run",
    "run_call",
    "wav_bytes",
    "write_wav",
]


async def run(*, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
    """Serve the emulator until cancelled; prints one line with its URL and public key.

    ``options`` go to :class:`TelnyxEmulator` (``api_key``, ``webhook_url``, ``realtime``,
    ``private_key_b64``, ``audio``...).
    """
    async with TelnyxEmulator(host=host, port=port, **options) as emu:
        print(
            f"telnyx emulator on {emu.base_url} "
            f"TELNYX_BASE_URL={emu.base_url} TELNYX_PUBLIC_KEY={emu.public_key_b64} "
            f"TELNYX_API_KEY={emu.api_key}",
            flush=True,
        )
        await asyncio.Event().wait()


async def run_call(
    *,
    server: str,
    audio: Path | None,
    out: Path | None,
    realtime: bool = True,
    to: str = "+15550100001",
    from_: str = "+15550100002",
    webhook_path: str = "/telnyx/webhook",
    timeout_s: float = 600.0,
    **options: Any,
) -> TelnyxCallReport:
    """Place one simulated inbound call to the switchboard app at ``server``.

    The call must come from the emulator the app trusts (its ``TELNYX_PUBLIC_KEY``) and sends
    commands to (its ``TELNYX_BASE_URL``), so:

    * with ``emulator="http://127.0.0.1:9100"`` — or with ``discover_at=`` a URL where a
      loopback emulator answers (``switchboard call`` passes the app's ``TELNYX_BASE_URL``) —
      the running emulator (``switchboard emulate telnyx``) places the call through its control
      API; its own clock setting applies;
    * otherwise an in-process emulator places it: pin ``port=``, ``private_key_b64=`` and
      ``api_key=`` to the values the app was started with.

    Nothing is read from the environment: the emulator plays the carrier, not the gateway, and
    learns where the gateway's emulator is only from its caller.

    Args:
        server: the app's base URL (``http://127.0.0.1:8000``).
        audio: WAV the caller plays (1 s of silence when None).
        out: where to write what the caller heard (WAV), or None.
        realtime: real-time call clock, else ``speed`` (default 20) times faster.
        options: ``emulator``, ``api_key``, ``dtmf``, ``discover_at`` (a URL to probe for a
            running emulator), and more :class:`TelnyxEmulator` options.
    """
    dtmf = str(options.pop("dtmf", ""))
    emulator = options.pop("emulator", None)
    api_key = options.pop("api_key", None)
    discover_at = options.pop("discover_at", None)
    webhook_url = server.rstrip("/") + webhook_path
    if emulator is None and discover_at and await find_emulator(str(discover_at)):
        emulator = discover_at
    if emulator:
        wav = await asyncio.to_thread(Path(audio).read_bytes) if audio is not None else None
        report = await place_remote_call(
            str(emulator),
            api_key=api_key or "KEY_EMULATOR",
            to=to,
            from_=from_,
            webhook_url=webhook_url,
            audio=wav,
            dtmf=dtmf,
            timeout_s=timeout_s,
        )
    else:
        if api_key:
            options["api_key"] = api_key
        async with TelnyxEmulator(realtime=realtime, **options) as emu:
            call = await emu.place_inbound_call(
                to=to, from_=from_, audio=audio, webhook_url=webhook_url, dtmf=dtmf
            )
            report = await call.wait(timeout_s)
    if out is not None:
        report.write_wav(out)
    return report
