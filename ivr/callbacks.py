"""Missed-call callbacks: she rings the free line, pallay calls her back into the lesson line.

The missed-call line never answers (free for her) and raises ``UserEvent(PallayMissedCall)`` with
the filtered number. ``request`` turns it into a queue row for ``ivr.outbound.Dialer``, unless she
already has a callback on the way (the two rings become one) or has had her day's share. The
callback carries her pseudonym into the lesson line (AGI argument 1), so it keeps her language and
progress even though the caller id of an outgoing call is pallay's own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

import sqlite_utils

from audio_lessons import listeners, store
from audio_lessons.config import IvrSettings
from ivr import outbound
from ivr.ami import AmiClient, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """What became of one missed call: ``status`` "queued", "merged" (one already on its way),
    "capped" (daily cap reached) or "ignored" (no usable number)."""

    status: str
    row_id: int | None = None
    listener: str | None = None


def request(db: sqlite_utils.Database, settings: IvrSettings, secret: bytes, number: str,
            now: dt.datetime, source: str | None = None) -> Request:
    """Queue a callback for ``number`` (a missed call at ``now``), keeping the daily cap."""
    digits = listeners.normalise_number(number)
    if len(digits) < 6:
        log.info("missed call without a usable number: not called back")
        return Request("ignored")
    listener = listeners.pseudonym(secret, number)
    hours = outbound.Hours.parse(settings.callback_hours, settings.timezone)
    day = hours.local(now).date().isoformat()
    with store.write(db):
        if source and db.execute("SELECT 1 FROM ivr_outbound WHERE kind = 'callback' "
                                 "AND source = ?", [source]).fetchone():
            return Request("merged", None, listener)  # the same event twice (AMI replay)
        open_row = db.execute(
            "SELECT id FROM ivr_outbound WHERE listener = ? AND kind = 'callback' "
            "AND status IN ('queued', 'calling')", [listener]).fetchone()
        if open_row:
            return Request("merged", open_row[0], listener)
        used = db.execute(
            "SELECT count(*) FROM ivr_outbound WHERE listener = ? AND kind = 'callback' "
            "AND local_day = ? AND status <> 'capped'", [listener, day]).fetchone()[0]
        status = "capped" if used >= settings.callback_daily_cap else "queued"
        row_id = outbound.insert(
            db, kind="callback", listener=listener, number=number, lesson_id=None, status=status,
            max_tries=settings.callback_tries, retry_seconds=settings.callback_retry_minutes * 60,
            now=now, local_day=day, source=source)
    log.info("missed call from listener %s: callback %s (%d today)", listener[:8], status,
             used + (status == "queued"))
    return Request(status, row_id, listener)


class MissedCalls:
    """Listens on AMI for the missed-call line and feeds the dialer."""

    def __init__(self, settings: IvrSettings, secret: bytes, dialer: outbound.Dialer):
        self.settings, self.secret, self.dialer = settings, secret, dialer
        self.heard: list[tuple[str, float]] = []  # (source, loop time the event arrived)

    def attach(self, ami: AmiClient) -> None:
        ami.add_handler(self.on_event)

    async def on_event(self, event: Message) -> Request | None:
        if event.get("Event") != "UserEvent" or event.get("UserEvent") != "PallayMissedCall":
            return None
        source = event.get("Uniqueid") or None
        self.heard.append((source or "", asyncio.get_running_loop().time()))
        result = await self.dialer.db_call(request, self.settings, self.secret,
                                           event.get("Number", ""), self.dialer.clock(), source)
        if result.status == "queued":
            self.dialer.wake()
        return result
