"""Outbound alerts: listeners who said yes during a call are rung with a new lesson or a safety alert.

Opting in keeps her raw number (the only place outside an owed callback where one is kept) with the
time she agreed; opting out erases it. ``announce`` queues one call per opted-in listener; the
dialer (``ivr.outbound``) places them inside the allowed hours, rate-limited, retried, and records
each result. The answered call lands in the lesson line at that lesson: the outbound context runs
``AGI(agi://127.0.0.1:4573/lessons,LISTENER,LESSON_ID)``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import sqlite_utils

from audio_lessons import listeners, outgoing, store
from audio_lessons.config import IvrSettings
from ivr import outbound
from ivr.ami import AmiClient, OriginateResult

log = logging.getLogger(__name__)


def subscribe(db: sqlite_utils.Database, listener: str, number: str | None, on: bool) -> None:
    """She said yes (``on``) or no to new-lesson calls; yes keeps ``number``, no erases it.

    The lesson line calls this for the engine's ``SetAlerts``; an opt-out also cancels any alert
    call still owed to her (the dialer finds no number and closes the row).
    """
    if on and not number:
        raise ValueError("opting in needs the number to call")
    now = store.now()
    with store.write(db):
        if on:
            db.execute("INSERT INTO ivr_alert_optins (listener, number, consented_at) "
                       "VALUES (?, ?, ?) ON CONFLICT (listener) DO UPDATE SET "
                       "number = excluded.number, consented_at = excluded.consented_at",
                       [listener, number, now])
        else:
            db.execute("DELETE FROM ivr_alert_optins WHERE listener = ?", [listener])
        # The same flag the core reads to decide whether to offer alerts (listeners.set_alerts),
        # written in this transaction so the flag and the number never disagree.
        db.execute("INSERT INTO listeners (id, alerts, first_seen, last_seen) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (id) DO UPDATE SET alerts = excluded.alerts",
                   [listener, int(on), now, now])
    log.info("listener %s: alerts %s", listener[:8], "on" if on else "off")


def subscribers(db: sqlite_utils.Database) -> list[str]:
    return outgoing.subscribers(db)


def announce(db: sqlite_utils.Database, settings: IvrSettings, lesson_id: int,
             now: dt.datetime, at: dt.datetime | None = None) -> int:
    """Queue a call with ``lesson_id`` to every opted-in listener, from ``at``; return how many.

    The rule lives in ``audio_lessons.outgoing`` (the admin panel announces too).
    """
    return outgoing.announce(db, settings, lesson_id, now, at)


async def call_now(db: sqlite_utils.Database, settings: IvrSettings, secret: bytes,
                   ami: AmiClient, number: str, lesson_id: int | None,
                   clock: outbound.Clock = outbound.utc_now) -> OriginateResult:
    """Ring one number now (``pallay call``), outside the queue's hours and rate; one try, recorded
    as a "manual" row whose number is erased when the call ends."""
    listener = listeners.pseudonym(secret, number)
    now = clock()
    day = outbound.Hours.parse(settings.callback_hours, settings.timezone).local(now).date()
    with store.write(db):
        row_id = outbound.insert(db, kind="manual", listener=listener, number=number,
                                 lesson_id=lesson_id, status="calling", max_tries=1,
                                 retry_seconds=0, now=now, local_day=day.isoformat(), source=None)
        db.execute("UPDATE ivr_outbound SET tries = 1, last_try_at = ? WHERE id = ?",
                   [outbound.stamp(now), row_id])
    result = OriginateResult("failed")
    try:
        result = await ami.originate(
            outbound.outbound_channel(settings.outbound_channel, number), settings.outbound_context,
            variables=outbound.call_variables("manual", row_id, listener, lesson_id),
            caller_id=settings.outbound_caller_id, ring_seconds=settings.ring_seconds,
            channel_id=f"pallay-manual-{row_id}-{uuid.uuid4().hex[:8]}")
    finally:
        outbound.finish_try(db, row_id, result.outcome, clock())
    return result
