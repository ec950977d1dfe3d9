"""A small asyncio client for the Asterisk Manager Interface (AMI): actions, events, Originate.

The protocol is lines of ``Key: value`` ended by a blank line, after a one-line banner::

    Asterisk Call Manager/9.0.0
    Action: Login              ->   Response: Success
    ActionID: p1                    ActionID: p1
    Username: pallay                Message: Authentication accepted
    Secret: ...

Replies carry the action's ``ActionID``; list actions (``CoreShowChannels``) answer with
``EventList: start``, then events with the same ActionID, then one with ``EventList: Complete``. An
async Originate is acknowledged at once and its outcome arrives later as ``OriginateResponse``.

``AmiClient.run`` keeps one connection up for as long as it runs: it logs in, pings when the line is
quiet (a half-open TCP connection is otherwise invisible), and when Asterisk restarts it reconnects with
exponential backoff. Actions in flight when the connection drops raise ``AmiDisconnected``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

Message = dict[str, str]
Handler = Callable[[Message], object]  # may return an awaitable: it then runs as a task

MAX_LINE = 65536
# Originate's asynchronous outcome; Asterisk's "Reason" codes (include/asterisk/frame.h).
REASONS = {"0": "failed", "1": "hangup", "3": "no-answer", "4": "answered", "5": "busy",
           "8": "congestion"}


class AmiError(Exception):
    """Base of the AMI client's errors (developer-facing, English)."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error`` (no permission, no such channel, bad arguments)."""

    def __init__(self, action: str, reply: Message):
        super().__init__(f"{action}: {reply.get('Message', 'error')}")
        self.reply = reply


class AmiDisconnected(AmiError):
    """Not connected, or the connection dropped before the reply came."""


def encode_action(name: str, action_id: str, fields: Mapping[str, object]) -> bytes:
    """One action packet; a list value repeats its key (``Variable``). Refuses line breaks,
    which would let a value inject its own headers or actions."""
    lines = [f"Action: {name}", f"ActionID: {action_id}"]
    for key, value in fields.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            text = str(item)
            if any(ch in text for ch in "\r\n\0") or any(ch in key for ch in ":\r\n"):
                raise ValueError(f"AMI field {key} with a line break: {text[:40]!r}")
            lines.append(f"{key}: {text}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_packet(lines: list[str]) -> Message:
    """``Key: value`` lines to a dict; a repeated key keeps its last value.

    ``Output:`` lines of a ``Response: Follows`` are not needed by pallay and are kept the same way.
    """
    packet: Message = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            packet[key.strip()] = value.strip()
    return packet


@dataclass(frozen=True)
class OriginateResult:
    """How an async Originate ended: ``outcome`` is "answered", "no-answer", "busy", ... or
    "disconnected" when AMI dropped before Asterisk told us."""

    outcome: str
    channel: str = ""
    unique_id: str = ""
    reason: str = ""

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"


class _Pending:
    """What one action waits for: its reply, the events of a list, a later OriginateResponse."""

    def __init__(self, loop: asyncio.AbstractEventLoop, action_id: str, name: str,
                 wants_list: bool, wants_originate: bool):
        self.action_id, self.name = action_id, name
        self.reply: asyncio.Future[Message] = loop.create_future()
        self.listed: asyncio.Future[list[Message]] | None = (
            loop.create_future() if wants_list else None)
        self.originated: asyncio.Future[Message] | None = (
            loop.create_future() if wants_originate else None)
        self.events: list[Message] = []

    def futures(self) -> list[asyncio.Future]:
        return [f for f in (self.reply, self.listed, self.originated) if f is not None]

    def done(self) -> bool:
        return all(f.done() for f in self.futures())


class AmiClient:
    """One AMI connection kept alive by ``run()``; share it among every part of pallay."""

    def __init__(self, host: str, port: int, user: str, secret: str, *, keepalive: float = 20.0,
                 timeout: float = 10.0, backoff_start: float = 0.5, backoff_cap: float = 30.0):
        self.host, self.port, self.user, self._secret = host, port, user, secret
        self.keepalive, self.timeout = keepalive, timeout
        self.backoff_start, self.backoff_cap = backoff_start, backoff_cap
        self.connects = 0  # successful logins so far (the second one is a reconnect)
        self._handlers: list[Handler] = []
        self._on_connect: list[Callable[[], Awaitable[None]]] = []
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._last_read = 0.0

    # ---- public ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler(event)`` for every event not tied to an action (an async one runs as a
        task). Handlers must be quick; an exception is logged and the stream goes on."""
        self._handlers.append(handler)

    def on_connect(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``await hook()`` after every login, e.g. to resynchronise the live view."""
        self._on_connect.append(hook)

    async def wait_connected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def action(self, name: str, **fields: object) -> Message:
        """Send one action and return its reply; raise AmiActionError on ``Response: Error``."""
        pending = await self._send(name, fields)
        return await self._result(pending, pending.reply)

    async def action_list(self, name: str, **fields: object) -> list[Message]:
        """Send a list action (``CoreShowChannels``) and return its events, without the closing
        ``...Complete`` event."""
        pending = await self._send(name, fields, wants_list=True)
        return await self._result(pending, pending.listed)

    async def originate(self, channel: str, context: str, exten: str = "s", priority: int = 1, *,
                        variables: Mapping[str, str] | None = None, caller_id: str = "",
                        ring_seconds: float = 30, channel_id: str = "",
                        started: Callable[[], None] | None = None) -> OriginateResult:
        """Place a call: ring ``channel``; once answered it runs ``context,exten,priority``.

        Returns when Asterisk reports the outcome (answered, or why not). ``channel_id`` fixes the
        new channel's Uniqueid, so the call can be recognised in events before it is answered.
        ``started`` is called once Asterisk has accepted the request (her phone is ringing).
        """
        fields: dict[str, object] = {
            "Channel": channel, "Context": context, "Exten": exten, "Priority": priority,
            "Timeout": int(ring_seconds * 1000), "Async": "true",
            "Variable": [f"{k}={v}" for k, v in (variables or {}).items()],
            "CallerID": caller_id or None, "ChannelId": channel_id or None}
        pending = await self._send("Originate", fields, wants_originate=True)
        try:
            await self._result(pending, pending.reply, keep=True)
            if started:
                started()
            # Asterisk always answers within the ring time; the margin covers a slow channel setup.
            async with asyncio.timeout(ring_seconds + self.timeout + 30):
                event = await asyncio.shield(pending.originated)
        except AmiDisconnected:
            return OriginateResult("disconnected", reason="AMI connection lost")
        finally:
            self._forget(pending)
        code = event.get("Reason", "")
        outcome = "answered" if event.get("Response") == "Success" else REASONS.get(code, "failed")
        return OriginateResult(outcome, event.get("Channel", ""), event.get("Uniqueid", ""), code)

    async def run(self) -> None:
        """Stay connected until cancelled: connect, log in, read; on failure wait and retry."""
        failures = 0
        while True:
            logins = self.connects
            try:
                await self._session()
            except (OSError, AmiError, asyncio.IncompleteReadError, TimeoutError,
                    asyncio.LimitOverrunError) as exc:
                log.warning("AMI %s:%s: %s", self.host, self.port,
                            exc or type(exc).__name__)
            if self.connects > logins:
                failures = 0  # that connection worked: start the backoff again from the bottom
            delay = min(self.backoff_cap, self.backoff_start * 2 ** failures)
            failures += 1
            log.info("AMI reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    # ---- the connection -------------------------------------------------------------------------

    async def _session(self) -> None:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_LINE)
        self._writer = writer
        reading = asyncio.create_task(self._read_loop(reader))
        try:
            await self._login(reading)
            self.connects += 1
            self._connected.set()
            log.info("AMI connected to %s:%s as %s (connection %d)", self.host, self.port,
                     self.user, self.connects)
            for hook in self._on_connect:
                self._spawn(hook())
            pinging = asyncio.create_task(self._keepalive())
            try:
                done, _ = await asyncio.wait({reading, pinging},
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # re-raise why the session ended
                raise AmiDisconnected("connection closed by Asterisk")
            finally:
                pinging.cancel()
        finally:
            self._connected.clear()
            reading.cancel()
            self._writer = None
            writer.close()
            self._fail_pending()
            # gather, not a suppressed await: if run() itself is being cancelled right now, that
            # cancellation must go through (swallowing it left run() reconnecting forever).
            await asyncio.gather(reading, return_exceptions=True)

    async def _login(self, reading: asyncio.Task) -> None:
        login = asyncio.ensure_future(self._action_now("Login", {"Username": self.user,
                                                                  "Secret": self._secret}))
        done, _ = await asyncio.wait({login, reading}, timeout=self.timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if login not in done:
            login.cancel()
            if reading in done:
                reading.result()
                raise AmiDisconnected("connection closed during login")
            raise TimeoutError("no reply to Login")
        login.result()  # AmiActionError: wrong user or secret

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout):
            banner = (await reader.readline()).decode(errors="replace")
        if not banner.startswith("Asterisk Call Manager"):
            raise AmiError(f"not an AMI server: {banner.strip()[:60]!r}")
        lines: list[str] = []
        while True:
            raw = await reader.readuntil(b"\n")
            self._last_read = loop.time()
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line:
                lines.append(line)
            elif lines:
                self._dispatch(parse_packet(lines))
                lines = []

    async def _keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_read = loop.time()
        while True:
            quiet = loop.time() - self._last_read
            if quiet < self.keepalive:
                await asyncio.sleep(self.keepalive - quiet)
                continue
            async with asyncio.timeout(self.timeout):  # TimeoutError: the connection is dead
                await self._action_now("Ping", {})

    def _dispatch(self, packet: Message) -> None:
        pending = self._pending.get(packet.get("ActionID", ""))
        if pending is None:
            if "Event" in packet:
                self._notify(packet)
            return
        if "Response" in packet and not pending.reply.done():
            pending.reply.set_result(packet)
            if packet["Response"] == "Error" and pending.listed and not pending.listed.done():
                pending.listed.set_result([])
        elif packet.get("Event") == "OriginateResponse" and pending.originated:
            if not pending.originated.done():
                pending.originated.set_result(packet)
        elif "Event" in packet and pending.listed:
            if packet.get("EventList") == "Complete":
                if not pending.listed.done():
                    pending.listed.set_result(pending.events)
            else:
                pending.events.append(packet)
        if pending.done():
            self._pending.pop(packet["ActionID"], None)

    def _notify(self, event: Message) -> None:
        for handler in list(self._handlers):
            try:
                outcome = handler(event)
                if inspect.isawaitable(outcome):
                    self._spawn(outcome)
            except Exception:  # one broken consumer must not stop the stream for the others
                log.exception("AMI event handler %r failed on %s", handler, event.get("Event"))

    def _spawn(self, awaitable: Awaitable) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI hook failed", exc_info=task.exception())

    def _forget(self, pending: _Pending) -> None:
        if self._pending.get(pending.action_id) is pending:
            del self._pending[pending.action_id]

    def _fail_pending(self) -> None:
        for pending in self._pending.values():
            for future in pending.futures():
                if not future.done():
                    future.set_exception(AmiDisconnected(f"{pending.name}: connection lost"))
                    future.exception()  # mark retrieved: nobody may be waiting any more
        self._pending.clear()

    # ---- sending --------------------------------------------------------------------------------

    async def _send(self, name: str, fields: Mapping[str, object], wants_list: bool = False,
                    wants_originate: bool = False) -> _Pending:
        if not self._connected.is_set() or self._writer is None:
            raise AmiDisconnected(f"{name}: not connected to AMI")
        return self._write(name, fields, wants_list, wants_originate)

    def _write(self, name: str, fields: Mapping[str, object], wants_list: bool,
               wants_originate: bool) -> _Pending:
        action_id = f"pallay-{next(self._ids)}"
        packet = encode_action(name, action_id, fields)
        pending = _Pending(asyncio.get_running_loop(), action_id, name, wants_list,
                           wants_originate)
        self._pending[action_id] = pending
        self._writer.write(packet)
        return pending

    async def _action_now(self, name: str, fields: Mapping[str, object]) -> Message:
        """For login and ping: send even while not yet marked connected."""
        if self._writer is None:
            raise AmiDisconnected(f"{name}: not connected to AMI")
        pending = self._write(name, fields, False, False)
        return await self._result(pending, pending.reply)

    async def _result(self, pending: _Pending, future: asyncio.Future, keep: bool = False):
        try:
            async with asyncio.timeout(self.timeout if future is pending.reply
                                       else self.timeout * 3):
                value = await asyncio.shield(future)
        except TimeoutError:
            if not keep:
                self._forget(pending)
            raise
        reply = pending.reply.result()
        if reply.get("Response") == "Error":
            self._forget(pending)
            raise AmiActionError(pending.name, reply)
        return value

