"""A small asyncio FastAGI server: one task per call, routed by the AGI script name.

The dialplan's ``AGI(agi://127.0.0.1:4573/lessons)`` reaches the handler in ``routes["lessons"]``.
A handler is ``async def handler(channel: AgiChannel) -> None``. Each call is isolated: whatever a
handler raises is logged and answered with a hang-up, and never reaches another call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from ivr.agi import ENV_TIMEOUT, MAX_LINE, AgiChannel, AgiError, Hangup, read_environment

log = logging.getLogger(__name__)

Handler = Callable[[AgiChannel], Awaitable[None]]
Routes = Mapping[str, Handler]


class AgiServer:
    """A listening FastAGI server and its live calls."""

    def __init__(self, routes: Routes, env_timeout: float = ENV_TIMEOUT):
        self.routes = routes  # read at each call, so a caller may swap handlers while serving
        self.env_timeout = env_timeout
        self.calls: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful after asking for port 0)."""
        return self._server.sockets[0].getsockname()[1]

    async def listen(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_LINE)
        log.info("FastAGI listening on %s:%s (scripts: %s)", host, self.port,
                 ", ".join(sorted(self.routes)) or "none")

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting, let live calls finish for ``grace`` seconds, then hang them up."""
        if self._server is None:
            return
        self._server.close()
        if self.calls:
            log.info("FastAGI stopping: waiting for %d live call(s)", len(self.calls))
            _, pending = await asyncio.wait(set(self.calls), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._server.wait_closed()  # after the calls: since 3.12 it waits for them
        log.info("FastAGI stopped")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.calls.add(task)
        try:
            await self._call(reader, writer)
        finally:
            self.calls.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _call(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            env = await read_environment(reader, self.env_timeout)
        except AgiError as exc:
            log.warning("malformed AGI request from %s: %s; hanging up", peer, exc)
            await _refuse(writer)
            return
        channel = AgiChannel(reader, writer, env)
        handler = self.routes.get(channel.script)
        if handler is None:
            log.warning("unknown AGI script %r from %s (call %s); hanging up", channel.script,
                        peer, channel.unique_id)
            await _hang_up(channel)
            return
        log.info("call %s: script %s", channel.unique_id, channel.script)
        try:
            await handler(channel)
        except Hangup as exc:
            log.info("call %s: caller gone (%s)", channel.unique_id, exc)
        except asyncio.CancelledError:
            # Only close() cancels a call task, and asyncio's stream callback would log a
            # cancelled connection task as an error: end the call here instead of re-raising.
            log.warning("call %s: cut by server shutdown; hanging up", channel.unique_id)
            await _hang_up(channel)
        except Exception:  # one broken call must not touch the others: log it, end it
            log.exception("call %s: handler for %r failed; hanging up", channel.unique_id,
                          channel.script)
            await _hang_up(channel)
        else:
            log.info("call %s: done", channel.unique_id)


async def _hang_up(channel: AgiChannel) -> None:
    """Best effort: the call is ending anyway, and the peer may already be gone."""
    try:
        async with asyncio.timeout(2.0):
            await channel.hangup()
    except (AgiError, OSError, TimeoutError) as exc:
        log.debug("call %s: hang-up not confirmed: %s", channel.unique_id, exc)


async def _refuse(writer: asyncio.StreamWriter) -> None:
    # Without a valid environment we cannot read replies safely: send HANGUP and close.
    with contextlib.suppress(OSError):
        writer.write(b"HANGUP\n")
        async with asyncio.timeout(2.0):
            await writer.drain()


async def start(host: str, port: int, routes: Routes, env_timeout: float = ENV_TIMEOUT
                ) -> AgiServer:
    """Start listening and return the server; ``await server.close()`` to stop."""
    server = AgiServer(routes, env_timeout)
    await server.listen(host, port)
    return server


async def serve(host: str, port: int, routes: Routes) -> None:
    """Serve until cancelled (Ctrl-C, SIGTERM in ``asyncio.run``), then shut down gracefully."""
    server = await start(host, port, routes)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
