"""Outgoing calls (missed-call callbacks and alerts): the queue table and the dialer that works it.

A queue row is one call pallay owes someone: queued -> calling -> answered, or back to queued for
another try, or given up. The row survives restarts (SQLite); a row left "calling" by a crash counts
as a failed try. The raw number lives in the row only while the call is owed: when it is answered
or given up the number is erased and the pseudonym and outcome stay for statistics. Alert rows carry
no number at all: it is read from the opt-in table when the call is placed, so an opt-out in the
meantime cancels the call.

The dialer places due rows through AMI Originate, inside the allowed hours (local time), with at
most ``max_channels`` calls at once and at most ``alerts_per_minute`` alerts a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
import zoneinfo
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from audio_lessons import outgoing, store
from audio_lessons.config import IvrSettings
from audio_lessons.errors import ConfigError
from audio_lessons.threads import in_thread
from ivr.ami import AmiClient, AmiError, OriginateResult

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
migrations = sqlite_utils.Migrations("pallay-ivr")
OPEN = ("queued", "calling")
TICK_SECONDS = 5.0  # how often the dialer looks again when nothing woke it


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    """The store's timestamp format (UTC, seconds)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


@migrations()
def m001_outbound(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE ivr_outbound (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,            -- callback | alert | manual
        listener TEXT NOT NULL,        -- pseudonym (HMAC of the number)
        number TEXT,                   -- callbacks and manual calls only; NULL once done
        lesson_id INTEGER,             -- alerts: the lesson she hears first
        status TEXT NOT NULL,          -- queued | calling | answered | given_up | capped | cancelled
        tries INTEGER NOT NULL DEFAULT 0,
        max_tries INTEGER NOT NULL,
        retry_seconds REAL NOT NULL,
        requested_at TEXT NOT NULL,
        local_day TEXT NOT NULL,       -- the caller's local date of the request (daily cap)
        next_try_at TEXT NOT NULL,
        last_try_at TEXT,
        last_result TEXT,              -- answered, no-answer, busy, congestion, failed, ...
        done_at TEXT,
        source TEXT                    -- the missed call's Uniqueid, or the alert batch
    )""")
    db.execute("CREATE INDEX ivr_outbound_due ON ivr_outbound (status, next_try_at)")
    db.execute("CREATE INDEX ivr_outbound_listener ON ivr_outbound (listener, local_day)")
    db.execute("CREATE UNIQUE INDEX ivr_outbound_source ON ivr_outbound (kind, source, listener)")
    db.execute("""CREATE TABLE ivr_alert_optins (
        listener TEXT PRIMARY KEY,
        number TEXT NOT NULL,          -- kept only while she wants the calls
        consented_at TEXT NOT NULL
    )""")


def connect(path: str | Path) -> sqlite_utils.Database:
    """The store with the phone line's tables added (its own migration set)."""
    db = store.connect(path)
    store.migrate(db, path, migrations)
    return db


# ---- hours --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hours:
    """The daily window in which pallay may ring people, in their local time."""

    start: dt.time
    end: dt.time
    zone: zoneinfo.ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str) -> Hours:
        """``"07:00-20:00"`` in ``"America/Lima"``; raise ConfigError if either is wrong."""
        try:
            start, end = (dt.time.fromisoformat(part.strip()) for part in text.split("-"))
            tz = zoneinfo.ZoneInfo(zone)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
            raise ConfigError(f"ivr.callback_hours {text!r} / ivr.timezone {zone!r}: escriba el "
                              "horario como HH:MM-HH:MM y la zona como America/Lima.") from exc
        if start >= end:
            raise ConfigError(f"ivr.callback_hours {text!r}: la hora de inicio debe ser anterior "
                              "a la del final.")
        return cls(start, end, tz)

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.zone)

    def allows(self, moment: dt.datetime) -> bool:
        return self.start <= self.local(moment).time() < self.end

    def next_opening(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` itself if inside the window, else when the window next opens."""
        if self.allows(moment):
            return moment
        local = self.local(moment)
        day = local.date() if local.time() < self.start else local.date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, self.start, self.zone).astimezone(dt.UTC)


# ---- the queue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    listener: str
    number: str | None
    lesson_id: int | None
    status: str
    tries: int
    max_tries: int
    retry_seconds: float
    next_try_at: str
    last_result: str | None


def rows(db: sqlite_utils.Database, where: str = "1", params: list | None = None) -> list[Row]:
    cols = ", ".join(Row.__dataclass_fields__)
    return [Row(*r) for r in db.execute(
        f"SELECT {cols} FROM ivr_outbound WHERE {where} ORDER BY next_try_at, id",
        params or []).fetchall()]


insert = outgoing.insert  # the row format lives in the core (the panel announces too)


def claim(db: sqlite_utils.Database, row_id: int, now: dt.datetime) -> bool:
    """Mark a due row as being called (one more try); False if someone else took it."""
    with store.write(db):
        changed = db.execute(
            "UPDATE ivr_outbound SET status = 'calling', tries = tries + 1, last_try_at = ? "
            "WHERE id = ? AND status = 'queued'", [stamp(now), row_id]).rowcount
    return changed == 1


def finish_try(db: sqlite_utils.Database, row_id: int, result: str, now: dt.datetime) -> str:
    """Record a try's result; requeue or close the row. Returns the new status.

    A row the lesson line already marked answered stays answered, whatever the dialer saw (AMI
    may have dropped while her phone rang).
    """
    with store.write(db):
        row = rows(db, "id = ?", [row_id])[0]
        if row.status != "calling":
            return row.status
        if result == "answered":
            status = "answered"
        elif result == "cancelled":
            status = "cancelled"
        elif row.tries >= row.max_tries:
            status = "given_up"
        else:
            status = "queued"
        if status == "queued":
            later = now + dt.timedelta(seconds=row.retry_seconds)
            db.execute("UPDATE ivr_outbound SET status = ?, last_result = ?, next_try_at = ? "
                       "WHERE id = ?", [status, result, stamp(later), row_id])
        else:
            db.execute("UPDATE ivr_outbound SET status = ?, last_result = ?, done_at = ?, "
                       "number = NULL WHERE id = ?", [status, result, stamp(now), row_id])
    return status


def mark_answered(db: sqlite_utils.Database, row_id: int, listener: str | None,
                  now: dt.datetime) -> bool:
    """The lesson line has her on the phone: close the row, so no try is placed again."""
    with store.write(db):
        changed = db.execute(
            "UPDATE ivr_outbound SET status = 'answered', last_result = 'answered', done_at = ?, "
            "number = NULL WHERE id = ? AND listener = ? AND status IN ('queued', 'calling')",
            [stamp(now), row_id, listener]).rowcount
    return changed == 1


def expire(db: sqlite_utils.Database, now: dt.datetime, max_age_hours: float) -> int:
    """Give up queued callbacks older than ``max_age_hours``: a day-old ring is no request."""
    cutoff = stamp(now - dt.timedelta(hours=max_age_hours))
    stale = "kind = 'callback' AND status = 'queued' AND requested_at < ?"
    # Looked for first without the write lock: each dialer round asks, and the lines write often.
    if not db.execute(f"SELECT 1 FROM ivr_outbound WHERE {stale} LIMIT 1", [cutoff]).fetchone():
        return 0
    with store.write(db):
        changed = db.execute(
            "UPDATE ivr_outbound SET status = 'given_up', last_result = 'expired', done_at = ?, "
            f"number = NULL WHERE {stale}", [stamp(now), cutoff]).rowcount
    if changed:
        log.info("outbound: %d callback(s) expired after %.0f h", changed, max_age_hours)
    return changed


def call_variables(kind: str, row_id: int, listener: str, lesson_id: int | None) -> dict:
    """Channel variables of an outgoing call; the pallay-outbound context hands them to the line."""
    return {"PALLAY_LISTENER": listener, "PALLAY_LESSON": lesson_id or "", "PALLAY_KIND": kind,
            "PALLAY_ROW": row_id}


def cancel(db: sqlite_utils.Database, row_id: int, now: dt.datetime) -> None:
    """Close a queued row without calling (an alert to someone who opted out since)."""
    if claim(db, row_id, now):
        finish_try(db, row_id, "cancelled", now)
        log.info("outbound %d cancelled: no number to call any more", row_id)


def recover(db: sqlite_utils.Database, now: dt.datetime) -> int:
    """Rows a crashed process left "calling": the try is lost, count it as failed."""
    stuck = [r.id for r in rows(db, "status = 'calling'")]
    for row_id in stuck:
        finish_try(db, row_id, "interrupted", now)
    return len(stuck)


def number_for(db: sqlite_utils.Database, row: Row) -> str | None:
    """Where to ring: the row's own number, or an alert's opted-in number (None: she opted out)."""
    if row.number:
        return row.number
    found = db.execute("SELECT number FROM ivr_alert_optins WHERE listener = ?",
                       [row.listener]).fetchone()
    return found[0] if found else None


# ---- the dialer ---------------------------------------------------------------------------------


def outbound_channel(template: str, number: str) -> str:
    """The Originate channel for a number: ``PJSIP/{number}@pallay-trunk``. The number is
    filtered again here: it came from a phone network."""
    clean = "".join(ch for ch in number if ch.isdigit() or ch == "+")[:20]
    if not clean:
        raise ValueError("no digits to call")
    return template.format(number=clean)


class Dialer:
    """Works the queue through AMI until cancelled; ``wake()`` when a row was added."""

    def __init__(self, db_path: str | Path, settings: IvrSettings, ami: AmiClient, *,
                 clock: Clock = utc_now):
        self.settings, self.ami, self.clock = settings, ami, clock
        self.hours = Hours.parse(settings.callback_hours, settings.timezone)
        self.db = connect(db_path)
        self._db_lock = asyncio.Lock()  # one connection, used from worker threads one at a time
        self._wake = asyncio.Event()
        self._calls: dict[int, asyncio.Task] = {}
        self._alert_times: deque[float] = deque()
        self.rang: list[tuple[int, float]] = []  # (row id, loop time her phone started ringing)

    def wake(self) -> None:
        self._wake.set()

    @property
    def active(self) -> int:
        return len(self._calls)

    async def db_call(self, fn, *args):
        """Run a blocking store function in a worker thread, one at a time."""
        async with self._db_lock:
            return await in_thread(fn, self.db, *args)

    async def run(self) -> None:
        recovered = await self.db_call(recover, self.clock())
        if recovered:
            log.warning("dialer: %d call(s) interrupted by the last shutdown, counted as failed",
                        recovered)
        try:
            while True:
                try:
                    delay = await self._round()
                except Exception:  # a locked or full database must not stop all future calls
                    log.exception("dialer: round failed; trying again shortly")
                    delay = TICK_SECONDS
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):  # not wait_for: in 3.11 it can drop a stop
                        await self._wake.wait()
        finally:
            for task in self._calls.values():
                task.cancel()
            await asyncio.gather(*self._calls.values(), return_exceptions=True)

    async def _round(self) -> float:
        """Start what is due; return how long to sleep before looking again."""
        now = self.clock()
        await self.db_call(expire, now, self.settings.callback_expiry_hours)
        if not self.ami.connected:
            return TICK_SECONDS
        opening = self.hours.next_opening(now)
        if opening > now:
            return min((opening - now).total_seconds(), 600.0)
        due = await self.db_call(
            lambda db: rows(db, "status = 'queued' AND next_try_at <= ?", [stamp(now)]))
        for row in due:
            if self.active >= self.settings.max_channels:
                break
            if row.kind == "alert":
                if await self.db_call(number_for, row) is None:
                    await self.db_call(cancel, row.id, now)  # she opted out: no call, no token
                    continue
                if not self._alert_allowed():
                    continue
            if row.id not in self._calls and await self.db_call(claim, row.id, now):
                self._calls[row.id] = asyncio.create_task(self._place(row))
        return await self._next_delay(now)

    async def _next_delay(self, now: dt.datetime) -> float:
        upcoming = await self.db_call(lambda db: db.execute(
            "SELECT min(next_try_at) FROM ivr_outbound WHERE status = 'queued'").fetchone()[0])
        if upcoming is None:
            return TICK_SECONDS * 12
        wait = (parse_stamp(upcoming) - now).total_seconds()
        return min(max(wait, 0.2), TICK_SECONDS)

    def _alert_allowed(self) -> bool:
        loop = asyncio.get_running_loop()
        while self._alert_times and loop.time() - self._alert_times[0] >= 60:
            self._alert_times.popleft()
        if len(self._alert_times) >= self.settings.alerts_per_minute:
            return False
        self._alert_times.append(loop.time())
        return True

    async def _place(self, row: Row) -> None:
        result = "failed"
        try:
            result = await self._originate(row)
        except asyncio.CancelledError:
            result = "interrupted"
            raise
        except Exception:
            log.exception("dialer: call %d failed", row.id)
        finally:
            status = await self.db_call(finish_try, row.id, result, self.clock())
            self._calls.pop(row.id, None)
            log.info("dialer: %s %d try %d/%d: %s -> %s", row.kind, row.id, row.tries + 1,
                     row.max_tries, result, status)
            self.wake()

    async def _originate(self, row: Row) -> str:
        number = await self.db_call(number_for, row)
        if number is None:
            return "cancelled"
        loop = asyncio.get_running_loop()
        variables = call_variables(row.kind, row.id, row.listener, row.lesson_id)
        try:
            outcome: OriginateResult = await self.ami.originate(
                outbound_channel(self.settings.outbound_channel, number),
                self.settings.outbound_context, variables=variables,
                caller_id=self.settings.outbound_caller_id, ring_seconds=self.settings.ring_seconds,
                channel_id=f"pallay-{row.kind}-{row.id}-{uuid.uuid4().hex[:8]}",
                started=lambda: self.rang.append((row.id, loop.time())))
        except AmiError as exc:
            log.warning("dialer: %s %d not placed: %s", row.kind, row.id, exc)
            return "refused"
        return outcome.outcome
