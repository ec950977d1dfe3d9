"""AudioSocket: Asterisk streams what the caller says to pallay while she may answer.

The line sends ``EXEC AudioSocket <uuid>,127.0.0.1:<port>`` over AGI; Asterisk's app_audiosocket
connects to :class:`AudioSockets` and sends frames (a kind byte, a big-endian 16-bit length, the
payload). Real frames from Asterisk 22.10::

    01 00 10 <16 bytes>      the uuid of the EXEC, always first
    10 01 40 <320 bytes>     20 ms of what she says: 8 kHz signed 16-bit little-endian
    03 00 01 33              she pressed "3" (sent when the key ends; Asterisk 20.14/21.9/22.4
                             and later, see KEYS_SINCE)
    ff 00 01 <code>          an error on Asterisk's side

Closing pallay's end ends the app cleanly: the EXEC answers ``200 result=0`` and the call goes on.
When she hangs up, Asterisk just closes the socket (no ``00 00 00`` frame) and the EXEC answers
``HANGUP``. The app gives up after 2 s in which neither side sent anything, so pallay sends 20 ms
of silence after each second without a frame (a line with silence suppression sends none).

No library: the protocol is these five frame kinds, and the one on PyPI is a thread-per-call server.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ivr.agi import AgiChannel, CommandError, Hangup

log = logging.getLogger(__name__)

HANGUP, UUID, DTMF, AUDIO, ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
RATE = 8000
CONNECT_TIMEOUT_S = 3.0  # EXEC to Asterisk's connection (it takes about 1 ms here)
KEEPALIVE_S = 1.0  # app_audiosocket drops a connection after 2 s without a frame either way
SILENCE_FRAME = bytes([AUDIO]) + (320).to_bytes(2, "big") + bytes(320)
# The first releases whose AudioSocket forwards keys (asterisk/asterisk PR #1138: listed in the
# 22.4.0 release notes, June 2025; 20.14 and 21.9 are that day's releases of the other branches,
# unchecked here). Before them keys pressed during a streamed capture are lost: they record.
KEYS_SINCE = {20: 14, 21: 9, 22: 4}


class StreamUnavailable(Exception):
    """This capture cannot stream (no app_audiosocket, no connection): record it instead."""


def forwards_keys(version: str) -> bool:
    """True when the Asterisk that sent ``agi_version`` ("22.10.1+dfsg...") sends key frames."""
    found = re.match(r"(\d+)\.(\d+)", version)
    if not found:
        return False
    major, minor = int(found.group(1)), int(found.group(2))
    return major > max(KEYS_SINCE) or minor >= KEYS_SINCE.get(major, 10 ** 6)


@dataclass(frozen=True)
class Frame:
    kind: int
    payload: bytes


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame, or None when Asterisk closed the socket."""
    try:
        header = await reader.readexactly(3)
        payload = await reader.readexactly(int.from_bytes(header[1:], "big"))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return Frame(header[0], payload)


class Endpoint(Protocol):
    """What a capture feeds her audio to (``ivr.answer.Answer``)."""

    def feed(self, samples: np.ndarray) -> bool:
        """Take 8 kHz samples; True once she has stopped speaking."""


class AudioSockets:
    """pallay's AudioSocket server: one port for every call; each capture waits for its uuid."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.requested_port = host, port
        self.port = 0
        self.waiting: dict[uuid.UUID, asyncio.Future] = {}  # captures not yet connected
        self.streaming: set[str] = set()  # the calls (AGI unique ids) streaming now
        self._server: asyncio.Server | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("AudioSocket listening on %s:%s (streamed voice capture)", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                first = await read_frame(reader)
        except TimeoutError:
            first = None
        call = uuid.UUID(bytes=first.payload) if first and first.kind == UUID and len(
            first.payload) == 16 else None
        future = self.waiting.pop(call, None)
        if future is None or future.done():
            log.warning("AudioSocket connection with no capture waiting for it (%s); closed", call)
            writer.close()
            return
        future.set_result((reader, writer))

    async def capture(self, channel: AgiChannel, keys: str, max_ms: int,
                      endpoint: Endpoint) -> str | None:
        """Stream her audio into ``endpoint`` until it says she stopped, a key in ``keys``, or
        ``max_ms``; return the key or None. Raises Hangup when she leaves, StreamUnavailable
        when Asterisk could not stream (nothing was captured: the caller records instead)."""
        call = uuid.uuid4()
        connected = asyncio.get_running_loop().create_future()
        self.waiting[call] = connected
        app = asyncio.create_task(channel.command(
            "EXEC", "AudioSocket", f"{call},{self.host}:{self.port}", timeout=None))
        try:
            reader, writer = await self._connection(call, connected, app)
        except StreamUnavailable:
            self.waiting.pop(call, None)
            await _settle(app)
            raise
        except BaseException:
            self.waiting.pop(call, None)
            app.cancel()
            raise
        self.streaming.add(channel.unique_id)
        try:
            key = await _listen(reader, writer, keys, max_ms, endpoint)
        except BaseException:
            app.cancel()
            raise
        finally:
            self.streaming.discard(channel.unique_id)
            writer.close()  # ends the app: the EXEC replies now
        await _ended(app)
        return key

    async def _connection(self, call: uuid.UUID, connected: asyncio.Future, app: asyncio.Task):
        done, _ = await asyncio.wait({connected, app}, timeout=CONNECT_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if connected in done:
            return connected.result()
        if app in done:
            try:
                reply = app.result()  # Hangup: she left, raised as it is
            except CommandError as exc:  # result=-1 on a live channel: it could not connect
                raise StreamUnavailable(f"AudioSocket failed: {exc}") from exc
            raise StreamUnavailable("no AudioSocket application in Asterisk (load "
                                    "app_audiosocket.so)" if reply.result == -2 else
                                    f"AudioSocket ended at once: {reply.lines[0]}")
        raise StreamUnavailable(f"Asterisk did not connect to {self.host}:{self.port} "
                                f"within {CONNECT_TIMEOUT_S} s")


async def _listen(reader, writer, keys: str, max_ms: int, endpoint: Endpoint) -> str | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_ms / 1000
    while (left := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(min(left, KEEPALIVE_S)):
                frame = await read_frame(reader)
        except TimeoutError:
            writer.write(SILENCE_FRAME)  # a line sending nothing: keep the app alive
            continue
        if frame is None or frame.kind == HANGUP:
            return None  # she hung up, most likely: the EXEC's reply says (_ended)
        if frame.kind == AUDIO:
            if endpoint.feed(np.frombuffer(frame.payload, dtype="<i2")):
                return None
        elif frame.kind == DTMF:
            key = frame.payload.decode("ascii", errors="replace")[:1]
            if key and key in keys:
                return key
        elif frame.kind == ERROR:
            log.warning("AudioSocket error frame from Asterisk: %s", frame.payload.hex())
            return None
    return None


async def _ended(app: asyncio.Task) -> None:
    """Wait for the EXEC's reply: Hangup if she left; any other failure is only logged (what
    was captured stands, and the call goes on)."""
    try:
        await app
    except CommandError as exc:
        log.warning("AudioSocket ended with an error: %s", exc)


async def _settle(app: asyncio.Task) -> None:
    """After giving up on a connection: the EXEC's reply must be read before the next command
    (a late connection finds no capture and is closed, which ends the app). Hangup if she left."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await asyncio.shield(app)
    except CommandError:
        pass
    except TimeoutError:
        app.cancel()
        raise Hangup("AudioSocket never ended: the AGI channel is out of step") from None
