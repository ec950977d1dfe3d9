"""The FastAGI layer over a real socket, driven by recorded transcripts (no Asterisk needed)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ivr import server
from ivr.agi import AgiChannel, CommandError, Hangup, ProtocolError, quote

FIXTURES = Path(__file__).parent / "fixtures" / "agi"


def steps(name: str) -> list[tuple[str, str]]:
    """The transcript as (kind, text): send, expect, long, close, eof."""
    out = []
    for line in (FIXTURES / f"{name}.txt").read_text().splitlines():
        if line.startswith("#") or not line:
            continue
        if line.startswith(">"):
            out.append(("send", line[2:]))
        elif line.startswith("< "):
            out.append(("expect", line[2:]))
        else:
            word, _, arg = line.partition(" ")
            out.append((word.lstrip("!"), arg))
    return out


async def play(port: int, name: str) -> list[str]:
    """Be Asterisk for one transcript; return pallay's lines that did not match (empty: all did)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    wrong = []
    try:
        for kind, text in steps(name):
            if kind == "send":
                writer.write(text.encode() + b"\n")
            elif kind == "long":
                writer.write(b"agi_x: " + b"x" * int(text) + b"\n")
            elif kind == "close":
                writer.close()
                return wrong
            elif kind == "expect":
                got = (await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\n")
                if got != text:
                    wrong.append(f"expected {text!r}, got {got!r}")
            elif kind == "eof":
                rest = await asyncio.wait_for(reader.read(), 5)
                if rest:
                    wrong.append(f"expected the connection closed, got {rest[:80]!r}")
    finally:
        writer.close()
    return wrong


def run_session(routes, *names: str, env_timeout: float = 5.0) -> list[list[str]]:
    """Serve ``routes`` on a free port and play transcripts at once; return each one's mismatches."""
    async def main():
        srv = await server.start("127.0.0.1", 0, routes, env_timeout=env_timeout)
        try:
            return await asyncio.gather(*(play(srv.port, n) for n in names))
        finally:
            await srv.close(grace=2)
    return asyncio.run(main())


class Recorder:
    """Handlers that write down what the AGI layer returned, for the assertions."""

    def __init__(self):
        self.seen: dict[str, object] = {}

    async def normal(self, ch: AgiChannel) -> None:
        self.seen["script"] = ch.script
        self.seen["unique_id"] = ch.unique_id
        await ch.answer()
        self.seen["stream"] = await ch.stream_file("demo-congrats", "0123456789#")
        self.seen["language"] = await ch.get_variable("CHANNEL(language)")
        self.seen["unset"] = await ch.get_variable("NOPE")
        self.seen["wait"] = await ch.wait_for_digit(5000)
        self.seen["record"] = await ch.record_file("/tmp/pallay-msg", "wav", "#", 10000,
                                                   beep=True, silence_s=3)
        await ch.set_variable("PALLAY_NOTE", "dos palabras")
        await ch.hangup()

    async def streams(self, ch: AgiChannel) -> None:
        await ch.answer()
        try:
            await ch.stream_file("demo-congrats", "0123456789#")
        except Hangup as exc:
            self.seen["hangup"] = exc
            raise

    async def waits(self, ch: AgiChannel) -> None:
        await ch.answer()
        try:
            await ch.wait_for_digit(5000)
        except Hangup as exc:
            self.seen["hangup"] = exc
            raise
        self.seen["returned"] = True

    async def missing(self, ch: AgiChannel) -> None:
        await ch.answer()
        try:
            await ch.stream_file("nonexistent-file", "")
        except CommandError as exc:
            self.seen["error"] = exc
            await ch.verbose("pallay: missing prompt")
        await ch.hangup()

    async def bad_syntax(self, ch: AgiChannel) -> None:
        try:
            await ch.command("STREAM FILE")
        except CommandError as exc:
            self.seen["error"] = exc
        await ch.verbose("still in step")
        await ch.hangup()

    async def broken(self, ch: AgiChannel) -> None:
        await ch.answer()
        raise RuntimeError("a bug in a handler")


def test_normal_session_parses_every_reply():
    rec = Recorder()
    assert run_session({"lessons": rec.normal}, "normal_session") == [[]]
    assert rec.seen["script"] == "lessons"
    assert rec.seen["unique_id"] == "1795480600.0"
    assert rec.seen["stream"] == ("1", 17760)
    assert rec.seen["language"] == "es"
    assert rec.seen["unset"] is None
    assert rec.seen["wait"] is None
    record = rec.seen["record"]
    assert (record.digit, record.endpos, record.reason) == (None, 11840, "timeout")


def test_hangup_mid_stream_is_a_clean_hangup_with_position(caplog):
    rec = Recorder()
    with caplog.at_level(logging.INFO):
        assert run_session({"lessons": rec.streams}, "hangup_mid_stream") == [[]]
    assert isinstance(rec.seen["hangup"], Hangup)
    assert rec.seen["hangup"].endpos == 16160  # where she stopped hearing: 2.02 s
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("caller gone" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["hangup_line_first", "hangup_511", "hangup_closed_socket"])
def test_every_way_asterisk_says_hangup_raises_hangup(name, caplog):
    rec = Recorder()
    handler = rec.streams if name == "hangup_closed_socket" else rec.waits
    assert run_session({"lessons": handler}, name) == [[]]
    assert isinstance(rec.seen.get("hangup"), Hangup)
    assert "returned" not in rec.seen
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_missing_file_on_a_live_channel_is_an_error_not_a_hangup():
    rec = Recorder()
    assert run_session({"lessons": rec.missing}, "missing_file") == [[]]
    assert "nonexistent-file" in str(rec.seen["error"])


def test_multiline_520_is_read_whole_and_the_session_stays_in_step():
    rec = Recorder()
    assert run_session({"lessons": rec.bad_syntax}, "multiline_520") == [[]]
    assert "520 End of proper usage." in str(rec.seen["error"])


def test_unknown_script_gets_a_clean_hangup_and_a_log_line(caplog):
    rec = Recorder()
    assert run_session({"lessons": rec.normal}, "unknown_script") == [[]]
    assert rec.seen == {}
    assert any("unknown AGI script 'nosuch'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["malformed_environment", "overlong_line"])
def test_bad_request_is_refused_without_running_a_handler(name, caplog):
    rec = Recorder()
    assert run_session({"lessons": rec.normal}, name) == [[]]
    assert rec.seen == {}
    assert any("malformed AGI request" in r.getMessage() for r in caplog.records)


def test_handler_error_is_logged_and_answered_with_hangup(caplog):
    rec = Recorder()
    assert run_session({"broken": rec.broken}, "handler_error") == [[]]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "a bug in a handler" in errors[0].exc_text


def test_broken_calls_never_touch_the_others(caplog):
    rec = Recorder()
    names = ["normal_session", "handler_error"] * 25
    results = run_session({"lessons": rec.normal, "broken": rec.broken}, *names)
    assert results == [[]] * 50
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 25


def test_calls_are_served_at_once_not_one_after_another():
    """20 handlers wait for each other: served one at a time, the first would wait forever."""
    started = []

    async def main():
        everyone = asyncio.Event()

        async def handler(ch: AgiChannel) -> None:
            started.append(ch.unique_id)
            if len(started) == 20:
                everyone.set()
            await asyncio.wait_for(everyone.wait(), 5)
            await ch.hangup()

        srv = await server.start("127.0.0.1", 0, {"lessons": handler})
        try:
            return await asyncio.gather(*(_hangup_call(srv.port, i) for i in range(20)))
        finally:
            await srv.close(grace=2)

    assert asyncio.run(main()) == ["HANGUP"] * 20
    assert len(set(started)) == 20


async def _hangup_call(port: int, i: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"agi_network_script: lessons\nagi_uniqueid: call.{i}\n\n".encode())
    line = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    writer.write(b"200 result=1\n")
    writer.close()
    return line


def test_stalled_environment_times_out_with_a_hangup(caplog):
    async def main():
        srv = await server.start("127.0.0.1", 0, {}, env_timeout=0.3)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"agi_network: yes\n")  # and then nothing
            got = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return got
        finally:
            await srv.close()

    assert asyncio.run(main()) == b"HANGUP\n"
    assert any("nothing received within" in r.getMessage() for r in caplog.records)


def test_shutdown_lets_short_calls_finish_and_hangs_up_long_ones():
    async def main():
        async def slow(ch: AgiChannel) -> None:
            await ch.wait_for_digit(-1)  # never answered below: the shutdown must end it

        srv = await server.start("127.0.0.1", 0, {"lessons": slow})
        port = srv.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network_script: lessons\nagi_uniqueid: long.1\n\n")
        first = await asyncio.wait_for(reader.readline(), 5)
        closing = asyncio.create_task(srv.close(grace=0.2))
        second = await asyncio.wait_for(reader.readline(), 5)
        writer.write(b"200 result=1\n")
        await asyncio.wait_for(closing, 5)
        refused = None
        try:
            await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            refused = exc
        writer.close()
        return first, second, refused

    first, second, refused = asyncio.run(main())
    assert first == b"WAIT FOR DIGIT -1\n"
    assert second == b"HANGUP\n"
    assert isinstance(refused, ConnectionRefusedError)


def test_quote_refuses_line_breaks_and_keeps_words_together():
    assert quote("digits/1") == "digits/1"
    assert quote("") == '""'
    assert quote('dos "palabras"') == '"dos \\"palabras\\""'
    with pytest.raises(ValueError):
        quote("x\nHANGUP")


def test_garbage_reply_is_a_protocol_error():
    async def main():
        seen = {}

        async def handler(ch: AgiChannel) -> None:
            try:
                await ch.answer()
            except ProtocolError as exc:
                seen["error"] = exc

        srv = await server.start("127.0.0.1", 0, {"lessons": handler})
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"agi_network_script: lessons\n\n")
        await reader.readline()
        writer.write(b"hello there\n")
        await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await srv.close()
        return seen

    assert "unexpected reply 'hello there'" in str(asyncio.run(main())["error"])
