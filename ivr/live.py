"""Which calls are up right now, from AMI events, for the admin panel.

Fed by ``Newchannel``, ``Newstate``, ``Rename``, ``Hangup`` and pallay's own ``UserEvent``s
(``PallayOutbound`` names the listener of a callback or alert), and rebuilt from
``CoreShowChannels`` after every (re)connect, because events missed while AMI was down are lost.
Caller numbers appear in those events; they are never kept here: a call shows the listener's
pseudonym or nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from audio_lessons import live
from ivr.ami import AmiClient, AmiError, Message

log = logging.getLogger(__name__)
_NUMBER = re.compile(r"(?<![-\w])\+?\d{6,}")  # not the channel counter after "-"

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LiveChannel:
    """One Asterisk channel of a live call. ``kind``: "lesson" (she called the lesson line),
    "missed" (ringing the missed-call line), "outbound" (a callback or alert), "other"."""

    unique_id: str
    linked_id: str
    channel: str
    since: dt.datetime
    state: str
    kind: str
    listener: str | None = None


def _kind(context: str) -> str:
    return {"pallay-lessons": "lesson", "pallay-missed": "missed",
            "pallay-outbound": "outbound"}.get(context, "other")


def _masked(channel: str) -> str:
    """A channel name without a phone number in it (``Local/+51987654321@ctx-0001;1`` names one)."""
    return _NUMBER.sub("***", channel)


def _duration(text: str) -> dt.timedelta:
    """CoreShowChannel's ``Duration: 00:01:05``."""
    try:
        hours, minutes, seconds = (int(part) for part in text.split(":"))
    except ValueError:
        return dt.timedelta()
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


class LiveCalls:
    """The live view; one instance per AMI client (``attach``)."""

    def __init__(self, clock: Clock = utc_now, snapshot: Path | None = None):
        self.clock = clock
        self._channels: dict[str, LiveChannel] = {}
        self._listeners: dict[str, str] = {}  # linked id -> pseudonym, known before its channels
        self.synced_at: dt.datetime | None = None
        self.snapshot = snapshot  # where the admin panel reads the calls (audio_lessons.live)

    def publish(self) -> None:
        """Write the calls for the admin panel; a failure is logged, never raised into AMI."""
        if self.snapshot is None:
            return
        calls = [live.LiveCall(c.channel, c.kind, c.state, c.since.isoformat(),
                               (c.listener or "")[:8]) for c in self.calls()]
        try:
            live.write(self.snapshot, calls, self.clock())
        except OSError as exc:
            log.warning("live calls snapshot not written: %s", exc)

    def attach(self, ami: AmiClient) -> None:
        ami.add_handler(self.on_event)
        ami.on_connect(lambda: self.resync(ami))

    def channels(self) -> list[LiveChannel]:
        return sorted(self._channels.values(), key=lambda c: (c.since, c.unique_id))

    def calls(self) -> list[LiveChannel]:
        """One entry per call (the channels sharing a linked id), the oldest channel standing for
        it, with the listener if any of its channels knows her."""
        calls: dict[str, LiveChannel] = {}
        for chan in self.channels():
            first = calls.setdefault(chan.linked_id, chan)
            listener = first.listener or chan.listener or self._listeners.get(chan.linked_id)
            kind = first.kind if first.kind != "other" else chan.kind
            calls[chan.linked_id] = replace(first, listener=listener, kind=kind)
        return list(calls.values())

    def identify(self, unique_id: str, listener: str) -> None:
        """Name the listener of a channel (the lesson line knows her pseudonym, AMI does not)."""
        chan = self._channels.get(unique_id)
        if chan is not None:
            self._channels[unique_id] = replace(chan, listener=listener)
            self._listeners[chan.linked_id] = listener
            self.publish()

    def on_event(self, event: Message) -> None:
        name, uid = event.get("Event"), event.get("Uniqueid", "")
        if name == "Newchannel" and uid:
            self._channels[uid] = LiveChannel(
                uid, event.get("Linkedid", uid), _masked(event.get("Channel", "")), self.clock(),
                event.get("ChannelStateDesc", ""), _kind(event.get("Context", "")),
                self._listeners.get(event.get("Linkedid", uid)))
        elif name == "Hangup":
            gone = self._channels.pop(uid, None)
            if gone and not any(c.linked_id == gone.linked_id for c in self._channels.values()):
                self._listeners.pop(gone.linked_id, None)
        elif uid in self._channels:
            before = self._channels[uid]
            self._update(name, uid, event)
            if self._channels[uid] == before:
                return  # most AMI events (VarSet, NewExten...) change nothing shown
        else:
            return
        self.publish()

    def _update(self, name: str | None, uid: str, event: Message) -> None:
        chan = self._channels[uid]
        if name == "Newstate":
            chan = replace(chan, state=event.get("ChannelStateDesc", chan.state))
        elif name == "Rename":
            chan = replace(chan, channel=_masked(event.get("Newname", chan.channel)))
        elif name == "NewExten" and chan.kind == "other":
            chan = replace(chan, kind=_kind(event.get("Context", "")))
        elif name == "UserEvent" and event.get("UserEvent") == "PallayOutbound":
            listener = event.get("Listener") or None
            chan = replace(chan, kind="outbound", listener=listener)
            if listener:
                self._listeners[chan.linked_id] = listener
        self._channels[uid] = chan

    async def resync(self, ami: AmiClient) -> None:
        """Replace the view with Asterisk's own list of channels (after a reconnect)."""
        try:
            listed = await ami.action_list("CoreShowChannels")
        except AmiError as exc:
            log.warning("live view not resynchronised: %s", exc)
            return
        now = self.clock()
        fresh: dict[str, LiveChannel] = {}
        for ev in listed:
            uid = ev.get("Uniqueid", "")
            old = self._channels.get(uid)
            fresh[uid] = LiveChannel(
                uid, ev.get("Linkedid", uid), _masked(ev.get("Channel", "")),
                old.since if old else now - _duration(ev.get("Duration", "")),
                ev.get("ChannelStateDesc", ""), _kind(ev.get("Context", "")),
                old.listener if old else None)
        self._channels = fresh
        linked = {c.linked_id for c in fresh.values()}
        self._listeners = {k: v for k, v in self._listeners.items() if k in linked}
        self.synced_at = now
        self.publish()
        log.info("live view: %d channel(s) after resync", len(fresh))
