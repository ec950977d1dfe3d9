"""The FastAGI protocol: the request's environment, commands and their replies, hang-up detection.

Asterisk connects, sends ``agi_*: value`` lines and a blank line, then waits for one command line at a
time and answers each with a reply (see ``AgiChannel.command``). After the caller hangs up, Asterisk
may say so in four ways: a ``HANGUP`` line, ``200 result=-1``, ``511`` or a closed socket. All four
become ``Hangup``, so a handler needs one ``except``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_LINE = 8192  # bytes; Asterisk's own AGI buffer is 2048, so longer means a broken peer
MAX_ENV_LINES = 256
ENV_TIMEOUT = 5.0  # seconds for the whole environment block
REPLY_TIMEOUT = 10.0  # seconds for a quick command; playback and recording wait as long as they last

_RESULT = re.compile(r"result=(-?\d+)")
_DATA_AND_FIELDS = re.compile(r"(?: \((.*)\))?((?: +[A-Za-z_]+=\S*)*) *$")
_FIELD = re.compile(r"([A-Za-z_]+)=(\S*)")


class AgiError(Exception):
    """Base of the phone line's protocol errors (developer-facing, English)."""


class Hangup(AgiError):
    """The caller is gone; ``endpos`` is where playback or recording stopped, when Asterisk said."""

    def __init__(self, reason: str = "caller hung up", endpos: int | None = None):
        super().__init__(reason)
        self.endpos = endpos


class ProtocolError(AgiError):
    """The peer broke the protocol: malformed environment, over-long line, no reply in time."""


class CommandError(AgiError):
    """Asterisk refused a command (510 unknown, 520 bad syntax, or a failure result)."""

    def __init__(self, message: str, reply: Reply | None = None):
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class Reply:
    """One parsed AGI reply: ``code`` 200 on success, ``result``, the text in parentheses, and
    ``key=value`` fields such as ``endpos``."""

    code: int
    result: int = 0
    data: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    lines: tuple[str, ...] = ()

    @property
    def endpos(self) -> int | None:
        value = self.fields.get("endpos")
        return int(value) if value is not None and value.lstrip("-").isdigit() else None


async def read_line(reader: asyncio.StreamReader, timeout: float | None) -> str:
    """Read one line without its end; raise Hangup on a closed socket, ProtocolError if too long or
    late. The line limit is the reader's ``limit`` (the server sets it to MAX_LINE)."""
    try:
        async with asyncio.timeout(timeout):
            raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise Hangup("connection closed") from exc
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError(f"line longer than {exc.consumed} bytes") from exc
    except TimeoutError as exc:
        raise ProtocolError(f"nothing received within {timeout} s") from exc
    except ConnectionError as exc:
        raise Hangup(f"connection lost: {exc}") from exc
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


async def read_environment(reader: asyncio.StreamReader, timeout: float = ENV_TIMEOUT
                           ) -> dict[str, str]:
    """Read the ``agi_*`` block up to its blank line; raise ProtocolError if it is malformed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    env: dict[str, str] = {}
    for _ in range(MAX_ENV_LINES):
        try:
            line = await read_line(reader, max(0.0, deadline - loop.time()))
        except Hangup as exc:
            raise ProtocolError("connection closed before the end of the environment") from exc
        if not line:
            if not env:
                raise ProtocolError("empty environment")
            return env
        key, sep, value = line.partition(": ")
        if not sep and line.endswith(":"):  # Asterisk sends "agi_arg_1: " for an empty value
            key, sep, value = line[:-1], ":", ""
        if not sep or not key.startswith("agi_") or not key.replace("_", "").isalnum():
            raise ProtocolError(f"malformed environment line {line[:80]!r}")
        env[key] = value
    raise ProtocolError(f"environment longer than {MAX_ENV_LINES} lines")


def quote(arg: str | int) -> str:
    """Quote one command argument the way res_agi splits them; refuse line breaks (injection)."""
    text = str(arg)
    if "\n" in text or "\r" in text or "\0" in text:
        raise ValueError(f"AGI argument with a line break: {text[:40]!r}")
    if text and not re.search(r'[\s"\\]', text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _digit(result: int) -> str | None:
    return chr(result) if result > 0 else None


@dataclass(frozen=True)
class RecordResult:
    """How RECORD FILE ended: ``reason`` is "dtmf", "timeout" (silence or maximum) or "hangup"."""

    digit: str | None
    endpos: int
    reason: str


class AgiChannel:
    """One call, seen through its FastAGI connection. Not safe to share between tasks."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 env: dict[str, str], reply_timeout: float = REPLY_TIMEOUT):
        self.env = env
        self._reader = reader
        self._writer = writer
        self._reply_timeout = reply_timeout
        self.hung_up = False

    @property
    def script(self) -> str:
        """The script name from ``agi://host:port/NAME?...``: "lessons"."""
        return self.env.get("agi_network_script", "").split("?", 1)[0].strip("/")

    @property
    def args(self) -> list[str]:
        """The dialplan's extra AGI() arguments, ``agi_arg_1`` onwards."""
        found = []
        while f"agi_arg_{len(found) + 1}" in self.env:
            found.append(self.env[f"agi_arg_{len(found) + 1}"])
        return found

    @property
    def unique_id(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def caller_id(self) -> str:
        """The caller's number as Asterisk saw it ("unknown" or empty when withheld)."""
        return self.env.get("agi_callerid", "")

    async def command(self, *words: str | int, timeout: float | None = REPLY_TIMEOUT) -> Reply:
        """Send one command and return its reply; raise Hangup, CommandError or ProtocolError.

        ``words`` are quoted here; ``timeout=None`` waits as long as the command lasts (playback,
        recording: Asterisk replies or closes the socket when the caller hangs up). Real replies::

            200 result=0                         done; for key-waiting commands: no key pressed
            200 result=49 endpos=12345           stopped by key "1" (ASCII 49) at sample 12345
            200 result=1 (oro)                   GET VARIABLE found "oro"
            200 result=1 (timeout) endpos=11840  RECORD FILE ended by silence or its maximum
            200 result=-1 endpos=16160           failed: hung up (-> Hangup) or, on a live channel,
                                                 a missing file (-> CommandError); see _failed
            510 Invalid or unknown command       -> CommandError
            511 Command Not Permitted on a dead channel or intercept routine   -> Hangup
            520-Invalid command syntax.  Proper usage follows:                 -> CommandError
            Usage: STREAM FILE <filename> <escape digits> [sample offset]
            520 End of proper usage.
            HANGUP                               Asterisk's own notice, once, when the caller leaves
        """
        if self.hung_up:
            raise Hangup("command after hang-up")
        text = " ".join([str(words[0])] + [quote(w) for w in words[1:]])
        log.debug("%s -> %s", self.unique_id, text)
        try:
            self._writer.write(text.encode() + b"\n")
            await self._writer.drain()
        except ConnectionError as exc:
            self.hung_up = True
            raise Hangup(f"connection lost: {exc}") from exc
        lines = [await self._read(timeout)]
        if lines[0] == "HANGUP":  # the command's own reply follows; nobody needs it
            self.hung_up = True
            raise Hangup()
        code_text = lines[0][:3]
        if not code_text.isdigit():
            raise ProtocolError(f"unexpected reply {lines[0][:80]!r} to {words[0]}")
        code = int(code_text)
        if lines[0][3:4] == "-":  # multi-line: up to "CODE " (520 is the only one Asterisk sends)
            while not lines[-1].startswith(f"{code} "):
                lines.append(await self._read(self._reply_timeout))
        if code == 511:
            self.hung_up = True
            raise Hangup(lines[0])
        if code != 200:
            raise CommandError(f"{text[:60]}: {' / '.join(lines)}")
        found = _RESULT.match(lines[0], 4)
        tail = _DATA_AND_FIELDS.match(lines[0], found.end()) if found else None
        if not found or not tail:
            raise ProtocolError(f"unparsable reply {lines[0][:80]!r}")
        fields = dict(_FIELD.findall(tail.group(2)))
        reply = Reply(200, int(found.group(1)), tail.group(1), fields, tuple(lines))
        if reply.result == -1:
            await self._failed(reply, text)
        return reply

    async def _failed(self, reply: Reply, text: str) -> None:
        # result=-1 usually means the caller left, but STREAM FILE answers a missing file the same
        # way ("200 result=-1 endpos=0") on a live channel. Ask the channel to tell them apart:
        # a dead one answers HANGUP, 511 or result=-1 (and each of those raises Hangup here).
        if reply.data == "hangup":
            self.hung_up = True
        if not self.hung_up:
            try:
                await self.command("CHANNEL STATUS")
            except Hangup as exc:
                exc.endpos = reply.endpos
                raise
        if self.hung_up:
            raise Hangup(f"{text.split(' ')[0]} ended by hang-up", reply.endpos)
        raise CommandError(f"{text[:60]} failed: {reply.lines[0]}", reply)

    async def _read(self, timeout: float | None) -> str:
        try:
            line = await read_line(self._reader, timeout)
        except Hangup:
            self.hung_up = True
            raise
        log.debug("%s <- %s", self.unique_id, line)
        return line

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def hangup(self) -> None:
        """Hang up the call; later commands raise Hangup."""
        if not self.hung_up:
            try:
                await self.command("HANGUP")
            except Hangup:
                pass
            self.hung_up = True

    async def stream_file(self, path: str, escape_digits: str = "", offset: int = 0
                          ) -> tuple[str | None, int]:
        """Play ``path`` (no extension) from sample ``offset``; return (key pressed or None, endpos).

        Raises Hangup with ``endpos`` set when the caller leaves mid-file, and CommandError when
        Asterisk cannot open the file.
        """
        reply = await self.command("STREAM FILE", path, escape_digits, offset, timeout=None)
        return _digit(reply.result), reply.endpos or 0

    async def control_stream_file(self, path: str, escape_digits: str = "", skip_ms: int = 10_000,
                                  forward: str = "9", rewind: str = "7", pause: str = "5",
                                  offset_ms: int = 0) -> tuple[str | None, int]:
        """Play with Asterisk's own skip/pause keys; return (stop key or None, position in ms).

        ``escape_digits`` stop playback; ``forward``/``rewind``/``pause`` act inside it. Unlike
        STREAM FILE, the reply's endpos is in milliseconds ("200 result=-1 endpos=3260" after a
        hang-up 3.26 s in; "endpos=-1" for a missing file, which raises CommandError).
        """
        reply = await self.command("CONTROL STREAM FILE", path, escape_digits, skip_ms, forward,
                                   rewind, pause, offset_ms, timeout=None)
        return _digit(reply.result), max(reply.endpos or 0, 0)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait up to ``timeout_ms`` (-1: forever) for one key; None on timeout."""
        budget = None if timeout_ms < 0 else timeout_ms / 1000 + self._reply_timeout
        reply = await self.command("WAIT FOR DIGIT", timeout_ms, timeout=budget)
        return _digit(reply.result)

    async def record_file(self, path: str, format: str = "wav", escape_digits: str = "#",
                          timeout_ms: int = 120_000, beep: bool = True,
                          silence_s: int | None = None) -> RecordResult:
        """Record the caller into ``path.format`` until a key, silence, ``timeout_ms`` or hang-up.

        A hang-up keeps what was recorded and returns reason "hangup" instead of raising, because
        a message cut short is still a message; the next command raises Hangup. endpos counts the
        samples that really arrived ("200 result=1 (timeout) endpos=11840" after 1.5 s of speech;
        endpos=0 if the line carried no audio at all).
        """
        words: list[str | int] = ["RECORD FILE", path, format, escape_digits, timeout_ms, 0]
        if beep:
            words.append("BEEP")
        if silence_s:
            words.append(f"s={silence_s}")
        budget = None if timeout_ms < 0 else timeout_ms / 1000 + 30
        try:
            reply = await self.command(*words, timeout=budget)
        except Hangup as exc:
            return RecordResult(None, exc.endpos or 0, "hangup")
        reason = reply.data or "timeout"
        return RecordResult(_digit(reply.result) if reason == "dtmf" else None,
                            reply.endpos or 0, reason)

    async def get_variable(self, name: str) -> str | None:
        """A channel variable or dialplan function (``CALLERID(num)``); None when unset."""
        reply = await self.command("GET VARIABLE", name)
        return reply.data if reply.result == 1 else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, level)

    async def exec(self, app: str, args: str = "") -> int:
        """Run a dialplan application; return its result. -2 means no such application."""
        reply = await self.command("EXEC", app, args, timeout=None)
        if reply.result == -2:
            raise CommandError(f"no dialplan application {app!r}", reply)
        return reply.result
