"""Deepgram Aura text-to-speech: the streaming websocket, with the REST endpoint as fallback.

Theory of operation: one ``/v1/speak`` socket per call, opened on first use. :meth:`DeepgramTTS.
synthesize` sends ``Speak`` + ``Flush`` for its text and yields binary frames until ``Flushed``;
a *reader* task routes frames into a queue. If the consumer stops early (barge-in), ``Clear`` is
sent and the socket is *clearing*: the reader drops audio until ``Cleared``, and the next
synthesis waits for it, so no stale audio leaks into the next reply. REST (``POST /v1/speak``,
``container=none``; a WAV body is unwrapped) is used instead when the socket cannot be opened or
fails before any audio, when ``use_websocket=False``, and when the documented Flush budget (20 per
60 s) is spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from switchboard.config import Settings
from switchboard.errors import ProviderError, RemoteProtocolError
from switchboard.providers.base import AudioSpec
from switchboard.providers.deepgram.speak import (
    SpeakCleared,
    SpeakFlushed,
    SpeakOptions,
    SpeakProtocol,
    SpeakWarning,
    WavUnwrapper,
)
from switchboard.providers.deepgram.stt import Connector, deepgram_key
from switchboard.providers.sockets import close_socket, connect_provider

__all__ = ["DeepgramTTS"]

logger = logging.getLogger(__name__)

_Item = bytes | SpeakFlushed | SpeakWarning | None  # None: the socket closed


class DeepgramTTS:
    """Deepgram Aura synthesis for one call (implements ``TextToSpeech``).

    Args:
        settings: supplies ``deepgram_api_key`` and the base URLs.
        options: voice (``aura-…``), encoding and sample rate of the output.
        use_websocket: stream over the websocket (else REST only).
        flush_limit: Flushes per 60 s before switching a sentence to REST.
        client: ``httpx.AsyncClient`` for REST (not closed by :meth:`aclose` when given).
        connector: :func:`~switchboard.providers.sockets.connect_provider` (the default), or
            ``websockets.asyncio.client.connect``, or a compatible callable.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        options: SpeakOptions | None = None,
        use_websocket: bool = True,
        flush_limit: int = 20,
        client: httpx.AsyncClient | None = None,
        connector: Connector = connect_provider,
    ) -> None:
        self._key = deepgram_key(settings)
        self.options = options or SpeakOptions()
        self.ws_url = f"{settings.deepgram_ws_url}/v1/speak?{urlencode(self.options.ws_query())}"
        self.rest_url = f"{settings.deepgram_base_url}/v1/speak"
        self.use_websocket = use_websocket
        self.flush_limit = flush_limit
        self.protocol = SpeakProtocol()
        self._connector = connector
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(15.0, read=30.0))
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self._cleared = asyncio.Event()
        self._cleared.set()
        self._flush_times: deque[float] = deque()
        self._lock = asyncio.Lock()
        #: How each sentence was synthesized ("ws" or "rest"), for tests and metrics.
        self.routes: list[str] = []

    @property
    def output_spec(self) -> AudioSpec:
        return self.options.output_spec

    async def aclose(self) -> None:
        """Close the socket (``Close``) and the HTTP client if owned."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.send(self.protocol.close())
            with contextlib.suppress(Exception):
                await close_socket(self._ws)
        if self._reader is not None:
            self._reader.cancel()
        if self._owns_client:
            await self._client.aclose()

    # -- synthesis --------------------------------------------------------------------------------
    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Audio for ``text``; stopping the iteration early clears the rest on the server."""
        if not text.strip():
            return
        if self.use_websocket and self._flush_budget_left():
            ws = await self._socket()
            if ws is not None:
                produced = False
                try:
                    async with contextlib.aclosing(self._ws_synthesize(ws, text)) as stream:
                        async for audio in stream:
                            produced = True
                            yield audio
                    return
                except ProviderError:
                    if produced:
                        raise
                    logger.warning("Deepgram speak socket failed; using REST for this sentence")
        async with contextlib.aclosing(self._rest_synthesize(text)) as rest:
            async for audio in rest:
                yield audio

    def _flush_budget_left(self) -> bool:
        now = time.monotonic()
        while self._flush_times and now - self._flush_times[0] > 60.0:
            self._flush_times.popleft()
        return len(self._flush_times) < self.flush_limit

    async def _socket(self) -> ClientConnection | None:
        if self._ws is not None and self._reader is not None and not self._reader.done():
            return self._ws
        headers = {"Authorization": f"Token {self._key}"}
        try:
            self._ws = await self._connector(
                self.ws_url, additional_headers=headers, compression=None, open_timeout=10
            )
        except (InvalidStatus, OSError, TimeoutError, WebSocketException) as exc:
            logger.warning("Deepgram speak socket unavailable (%s); using REST", type(exc).__name__)
            self._ws = None
            return None
        self._inbox = asyncio.Queue()
        self._cleared.set()
        self._reader = asyncio.create_task(self._read_loop(self._ws), name="deepgram-speak")
        return self._ws

    async def _ws_synthesize(self, ws: ClientConnection, text: str) -> AsyncGenerator[bytes, None]:
        async with self._lock:  # one synthesis at a time on the socket
            try:
                await asyncio.wait_for(self._cleared.wait(), timeout=2.0)
            except TimeoutError:
                raise ProviderError("Deepgram speak never confirmed Clear", fatal=False) from None
            while not self._inbox.empty():
                self._inbox.get_nowait()  # stale frames from before a Clear
            finished = False
            try:
                await ws.send(self.protocol.speak(text))
                await ws.send(self.protocol.flush())
                self._flush_times.append(time.monotonic())
                self.routes.append("ws")
                while True:
                    item = await self._inbox.get()
                    match item:
                        case bytes():
                            yield item
                        case SpeakFlushed():
                            finished = True
                            return
                        case SpeakWarning(code=code, description=description):
                            logger.warning("Deepgram speak warning %s: %s", code, description)
                        case None:
                            raise ProviderError("Deepgram speak socket closed", fatal=False)
            except ConnectionClosed as exc:
                raise ProviderError("Deepgram speak socket closed", fatal=False) from exc
            finally:
                if not finished:
                    await self._clear(ws)

    async def _clear(self, ws: ClientConnection) -> None:
        self._cleared.clear()
        try:
            await ws.send(self.protocol.clear())
        except (ConnectionClosed, OSError):
            self._cleared.set()  # the socket is gone: nothing stale can arrive on it

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    if self._cleared.is_set():
                        self._inbox.put_nowait(frame)
                    continue
                try:
                    event = self.protocol.receive(frame)
                except RemoteProtocolError as exc:
                    logger.warning("%s", exc)
                    continue
                match event:
                    case SpeakCleared():
                        self._cleared.set()
                    case SpeakFlushed() | SpeakWarning() if self._cleared.is_set():
                        self._inbox.put_nowait(event)
        except ConnectionClosed:
            pass
        finally:
            self._cleared.set()
            self._inbox.put_nowait(None)

    async def _rest_synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        headers = {"Authorization": f"Token {self._key}"}
        unwrap = WavUnwrapper()
        odd = b""
        width = self.output_spec.format.bytes_per_sample
        self.routes.append("rest")
        try:
            async with self._client.stream(
                "POST",
                self.rest_url,
                params=self.options.rest_query(),
                json={"text": text},
                headers=headers,
            ) as response:
                if response.status_code >= 400:
                    body = (await response.aread())[:300].decode("utf-8", "replace")
                    raise ProviderError(
                        f"Deepgram speak HTTP {response.status_code}: {body}",
                        code=f"http_{response.status_code}",
                        fatal=False,
                    )
                async for piece in response.aiter_bytes():
                    audio = odd + unwrap.feed(piece)
                    cut = len(audio) - len(audio) % width
                    audio, odd = audio[:cut], audio[cut:]
                    if audio:
                        yield audio
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"Deepgram speak request failed: {type(exc).__name__}", fatal=False
            ) from exc
