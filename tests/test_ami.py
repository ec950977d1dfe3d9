"""The AMI client and the live view against a fake AMI server over a real TCP socket.

The fake speaks the protocol as Asterisk 22 does (banner, ``Response``/``EventList``/
``OriginateResponse`` packets with the ActionID); the same parts run against the real Asterisk in
tests/test_callbacks.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
from collections.abc import Callable

import pytest

from ivr.ami import AmiActionError, AmiClient, AmiDisconnected, encode_action, parse_packet
from ivr.live import LiveCalls

SECRET = "s3cret"
Packet = dict[str, str]


def packet(**fields: str) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode()


class FakeAmi:
    """A scripted AMI server: answers Login, Ping, CoreShowChannels and Originate like Asterisk."""

    def __init__(self) -> None:
        self.actions: list[Packet] = []
        self.raw: list[list[str]] = []  # each action's lines as sent (repeated keys kept)
        self.writers: list[asyncio.StreamWriter] = []
        self.channels: list[Packet] = []  # what CoreShowChannels lists
        self.originate_outcome: Packet = {"Response": "Success", "Reason": "4"}
        self.originate_delay = 0.05
        self.mute = False  # stop answering anything (a half-open connection)
        self.reverse = False  # answer a pair of actions in reverse order
        self.accepted = 0
        self.silenced: set[asyncio.StreamWriter] = set()  # connections gone half-open
        self.port = 0
        self._server: asyncio.Server | None = None
        self._held: list[tuple[asyncio.StreamWriter, bytes]] = []

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listening socket and every connection (Asterisk going away)."""
        self._server.close()
        self.drop()
        await self._server.wait_closed()

    def drop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    def emit(self, **fields: str) -> None:
        for writer in self.writers:
            writer.write(packet(**fields))

    def raw_actions(self, name: str) -> list[list[str]]:
        return [lines for lines in self.raw if f"Action: {name}" in lines]

    def named(self, name: str) -> list[Packet]:
        return [a for a in self.actions if a.get("Action") == name]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        lines: list[str] = []
        try:
            while raw := await reader.readline():
                line = raw.decode().rstrip("\r\n")
                if line:
                    lines.append(line)
                    continue
                action = parse_packet(lines)
                self.raw.append(lines)
                lines = []
                self.actions.append(action)
                if not self.mute and writer not in self.silenced:
                    await self._answer(writer, action)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the test is over

    async def _answer(self, writer: asyncio.StreamWriter, action: Packet) -> None:
        aid = action.get("ActionID", "")
        name = action.get("Action")
        if name == "Login":
            ok = action.get("Secret") == SECRET
            writer.write(packet(Response="Success" if ok else "Error", ActionID=aid,
                                Message="Authentication accepted" if ok
                                else "Authentication failed"))
            if not ok:
                writer.close()
        elif name == "Ping":
            writer.write(packet(Response="Success", ActionID=aid, Ping="Pong"))
        elif name == "CoreShowChannels":
            writer.write(packet(Response="Success", ActionID=aid, EventList="start",
                                Message="Channels will follow"))
            for chan in self.channels:
                writer.write(packet(Event="CoreShowChannel", ActionID=aid, **chan))
            writer.write(packet(Event="CoreShowChannelsComplete", ActionID=aid,
                                EventList="Complete", ListItems=str(len(self.channels))))
        elif name == "Originate":
            writer.write(packet(Response="Success", ActionID=aid,
                                Message="Originate successfully queued"))
            asyncio.get_running_loop().call_later(
                self.originate_delay, lambda: writer.write(packet(
                    Event="OriginateResponse", ActionID=aid, Channel=action["Channel"],
                    Uniqueid=action.get("ChannelId", "1.1"), **self.originate_outcome)))
        elif name == "Echo":  # a test action: answered in reverse pairs when asked
            reply = packet(Response="Success", ActionID=aid, Said=action.get("Say", ""))
            if self.reverse and not self._held:
                self._held.append((writer, reply))
                return
            writer.write(reply)
            for held_writer, held in self._held:
                held_writer.write(held)
            self._held.clear()
        else:
            writer.write(packet(Response="Error", ActionID=aid, Message="Invalid/unknown command"))


def with_fake(test):
    """Run an ``async def test(fake, ...)`` in its own event loop with a started FakeAmi (no
    pytest-asyncio needed); other parameters stay pytest fixtures."""
    sig = inspect.signature(test)

    def wrapper(**fixtures):
        async def main():
            server = FakeAmi()
            await server.start()
            try:
                await test(server, **fixtures)
            finally:
                await server.stop()
        asyncio.run(main())

    wrapper.__signature__ = sig.replace(parameters=list(sig.parameters.values())[1:])
    wrapper.__name__, wrapper.__doc__ = test.__name__, test.__doc__
    return wrapper


async def connected_client(fake: FakeAmi, live: LiveCalls | None = None, **options
                           ) -> tuple[AmiClient, asyncio.Task]:
    client = AmiClient("127.0.0.1", fake.port, "pallay", options.pop("secret", SECRET),
                       **{"timeout": 2.0, "backoff_start": 0.05, "backoff_cap": 0.4, **options})
    if live is not None:
        live.attach(client)
    task = asyncio.create_task(client.run())
    await client.wait_connected(5)
    return client, task


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll an outside condition (the fake server's view) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ---- protocol -----------------------------------------------------------------------------------


def test_an_action_cannot_smuggle_headers_through_a_value():
    assert encode_action("Originate", "a1", {"Variable": ["A=1", "B=2"], "CallerID": None}) == (
        b"Action: Originate\r\nActionID: a1\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n")
    with pytest.raises(ValueError):
        encode_action("Originate", "a1", {"CallerID": "x\r\nAction: Command\r\nCommand: x"})


@with_fake
async def test_replies_reach_their_own_action_even_out_of_order(fake):
    client, task = await connected_client(fake)
    fake.reverse = True  # the first Echo is answered after the second
    first, second = await asyncio.gather(client.action("Echo", Say="one"),
                                         client.action("Echo", Say="two"))
    assert (first["Said"], second["Said"]) == ("one", "two")
    with pytest.raises(AmiActionError, match="Invalid/unknown command"):
        await client.action("NoSuchThing")
    await stop(task)


@with_fake
async def test_list_action_collects_its_events(fake):
    fake.channels = [{"Channel": "PJSIP/gsm-0001", "Uniqueid": "1.1", "Linkedid": "1.1",
                      "ChannelStateDesc": "Up", "Context": "pallay-lessons", "Duration": "00:01:05"},
                     {"Channel": "Local/s@x-0001;1", "Uniqueid": "1.2", "Linkedid": "1.2",
                      "ChannelStateDesc": "Ring", "Context": "pallay-missed", "Duration": "0:00:02"}]
    client, task = await connected_client(fake)
    listed = await client.action_list("CoreShowChannels")
    assert [e["Uniqueid"] for e in listed] == ["1.1", "1.2"]
    assert all(e["Event"] == "CoreShowChannel" for e in listed)
    await stop(task)


@with_fake
async def test_originate_reports_how_the_call_ended(fake):
    client, task = await connected_client(fake)
    rang = []
    result = await client.originate("PJSIP/51987654321@trunk", "pallay-outbound",
                                    variables={"PALLAY_LISTENER": "ab12"}, ring_seconds=5,
                                    channel_id="pallay-callback-1", started=lambda: rang.append(1))
    assert result.answered and result.unique_id == "pallay-callback-1" and rang == [1]
    sent = fake.named("Originate")[0]
    assert (sent["Context"], sent["Timeout"], sent["Async"]) == ("pallay-outbound", "5000", "true")
    fake.originate_outcome = {"Response": "Failure", "Reason": "3"}
    assert (await client.originate("PJSIP/1@t", "c", ring_seconds=5)).outcome == "no-answer"
    fake.originate_outcome = {"Response": "Failure", "Reason": "5"}
    assert (await client.originate("PJSIP/1@t", "c", ring_seconds=5)).outcome == "busy"
    await stop(task)


@with_fake
async def test_events_reach_every_handler_and_a_broken_one_harms_none(fake, caplog):
    client, task = await connected_client(fake)
    seen, seen_async = [], asyncio.Queue()

    def broken(event):
        raise RuntimeError("bug in a consumer")

    async def slow(event):
        await seen_async.put(event["UserEvent"])

    client.add_handler(broken)
    client.add_handler(seen.append)
    client.add_handler(slow)
    fake.emit(Event="UserEvent", UserEvent="PallayMissedCall", Number="+51987654321",
              Uniqueid="9.1")
    fake.emit(Event="UserEvent", UserEvent="Other")
    assert await asyncio.wait_for(seen_async.get(), 2) == "PallayMissedCall"
    assert await asyncio.wait_for(seen_async.get(), 2) == "Other"
    assert [e["UserEvent"] for e in seen] == ["PallayMissedCall", "Other"]
    assert sum("bug in a consumer" in r.getMessage() or r.exc_info is not None
               for r in caplog.records if r.levelno == logging.ERROR) == 2
    await stop(task)


# ---- staying connected --------------------------------------------------------------------------


@with_fake
async def test_reconnects_after_asterisk_restarts_and_fails_what_was_in_flight(fake):
    client, task = await connected_client(fake)
    logins = []

    async def hook():
        logins.append(client.connects)

    client.on_connect(hook)
    fake.mute = True
    waiting = asyncio.create_task(client.action("Echo", Say="lost"))
    await until(lambda: fake.named("Echo"))
    port = fake.port
    await fake.stop()  # Asterisk goes away: connection and listening socket
    with pytest.raises(AmiDisconnected):
        await waiting
    assert not client.connected
    with pytest.raises(AmiDisconnected):
        await client.action("Ping")
    await asyncio.sleep(0.5)  # down for a while: several refused attempts, backoff at its cap
    loop = asyncio.get_running_loop()
    fake.mute = False
    restarted = loop.time()
    await fake.start(port)
    await client.wait_connected(5)
    elapsed = loop.time() - restarted
    await until(lambda: logins == [2])
    assert (await client.action("Echo", Say="back"))["Said"] == "back"
    print(f"\nreconnected {elapsed * 1000:.0f} ms after the server came back (backoff cap 0.4 s)")
    assert elapsed < 0.4 + 0.3
    await stop(task)


@with_fake
async def test_backoff_doubles_up_to_its_cap_while_asterisk_is_down(fake, caplog):
    await fake.stop()
    client = AmiClient("127.0.0.1", fake.port, "pallay", SECRET, timeout=1.0,
                       backoff_start=0.05, backoff_cap=0.2)
    with caplog.at_level(logging.INFO, logger="ivr.ami"):
        task = asyncio.create_task(client.run())
        await until(lambda: sum("reconnecting" in r.getMessage() for r in caplog.records) >= 5)
        await stop(task)
    delays = [r.getMessage().split(" in ")[1] for r in caplog.records
              if "reconnecting" in r.getMessage()]
    assert delays[:5] == ["0.1 s", "0.1 s", "0.2 s", "0.2 s", "0.2 s"]  # 0.05, 0.1, 0.2, cap


@with_fake
async def test_wrong_secret_is_logged_and_retried_not_fatal(fake, caplog):
    client = AmiClient("127.0.0.1", fake.port, "pallay", "wrong", timeout=1.0,
                       backoff_start=0.05, backoff_cap=0.1)
    task = asyncio.create_task(client.run())
    await until(lambda: len(fake.named("Login")) >= 3)
    assert not client.connected
    assert any("Authentication failed" in r.getMessage() for r in caplog.records)
    await stop(task)


@with_fake
async def test_keepalive_notices_a_silent_half_open_connection(fake):
    client, task = await connected_client(fake, keepalive=0.2, timeout=0.3)
    assert len(fake.named("Ping")) == 0
    await until(lambda: len(fake.named("Ping")) >= 1, 2)  # quiet line: pallay pings
    fake.silenced.update(fake.writers)  # this connection stops answering, its socket stays open
    loop = asyncio.get_running_loop()
    muted = loop.time()
    await until(lambda: client.connected and client.connects == 2, 3)
    detected = loop.time() - muted
    print(f"\nhalf-open AMI connection replaced after {detected * 1000:.0f} ms "
          f"(keepalive 0.2 s, timeout 0.3 s)")
    assert fake.accepted == 2  # dropped the dead connection and dialled again
    assert detected < 0.2 + 0.3 + 0.4
    await stop(task)


# ---- live view ----------------------------------------------------------------------------------


def clock_at(moment: dt.datetime) -> Callable[[], dt.datetime]:
    return lambda: moment


@with_fake
async def test_live_view_follows_calls_and_never_keeps_a_number(fake):
    now = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    live = LiveCalls(clock_at(now))
    client, task = await connected_client(fake, live)
    await until(lambda: live.synced_at is not None)
    received = asyncio.Event()
    client.add_handler(lambda e: received.set() if e.get("Event") == "Hangup" else None)
    fake.emit(Event="Newchannel", Channel="PJSIP/gsm-00000001", Uniqueid="7.1", Linkedid="7.1",
              ChannelStateDesc="Ring", CallerIDNum="+51987654321", Context="pallay-lessons",
              Exten="s")
    fake.emit(Event="Newstate", Channel="PJSIP/gsm-00000001", Uniqueid="7.1",
              ChannelStateDesc="Up", CallerIDNum="+51987654321")
    fake.emit(Event="Newchannel", Channel="Local/51912345678@pallay-phone-00000002;1",
              Uniqueid="pallay-callback-3-ab", Linkedid="pallay-callback-3-ab",
              ChannelStateDesc="Down", CallerIDNum="51912345678", Context="")
    fake.emit(Event="UserEvent", UserEvent="PallayOutbound", Uniqueid="pallay-callback-3-ab",
              Listener="00ff" * 8, Lesson="")
    fake.emit(Event="Newchannel", Channel="Local/s@pallay-missed-0001;1", Uniqueid="8.1",
              Linkedid="8.1", ChannelStateDesc="Ring", Context="pallay-missed",
              CallerIDNum="+51955555555")
    fake.emit(Event="Hangup", Channel="Local/s@pallay-missed-0001;1", Uniqueid="8.1", Cause="21")
    await asyncio.wait_for(received.wait(), 2)
    live.identify("7.1", "aa" * 16)
    calls = live.calls()
    assert [(c.channel, c.state, c.kind, c.listener) for c in calls] == [
        ("PJSIP/gsm-00000001", "Up", "lesson", "aa" * 16),
        ("Local/***@pallay-phone-00000002;1", "Down", "outbound", "00ff" * 8)]
    assert all(c.since == now for c in calls)
    # No caller's number anywhere in the view, not even inside a channel name.
    assert not [n for n in ("987654321", "912345678", "955555555") if n in repr(live.__dict__)]
    await stop(task)


@with_fake
async def test_live_view_is_rebuilt_after_a_reconnect(fake):
    now = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    live = LiveCalls(clock_at(now))
    client, task = await connected_client(fake, live)
    await until(lambda: live.synced_at is not None)
    fake.emit(Event="Newchannel", Channel="PJSIP/gsm-1", Uniqueid="1.1", Linkedid="1.1",
              ChannelStateDesc="Up", Context="pallay-lessons")
    await until(lambda: len(live.channels()) == 1)
    # While AMI is down the call ends and another starts: only a resync can know.
    fake.channels = [{"Channel": "PJSIP/gsm-2", "Uniqueid": "2.1", "Linkedid": "2.1",
                      "ChannelStateDesc": "Up", "Context": "pallay-lessons",
                      "Duration": "00:00:30"}]
    fake.drop()
    await until(lambda: client.connects == 2 and live.channels()
                and live.channels()[0].unique_id == "2.1")
    (chan,) = live.channels()
    assert chan.since == now - dt.timedelta(seconds=30) and chan.kind == "lesson"
    await stop(task)
