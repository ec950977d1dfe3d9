"""Calls pallay owes (missed-call callbacks, new-lesson alerts) as every front end may see them.

The phone line (``ivr.outbound``) owns the queue table ``ivr_outbound`` and works it; this module
holds what others need without importing ``ivr``: the row insert, announcing a lesson to every
subscriber (the rule the panel and ``ivr.alerts`` share), and a read-only view with no numbers.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
import zoneinfo
from dataclasses import dataclass

import sqlite_utils

from audio_lessons import store
from audio_lessons.config import IvrSettings
from audio_lessons.errors import CatalogError, PallayError

log = logging.getLogger(__name__)

OPEN = ("queued", "calling")
STATUS = {"queued": "en cola", "calling": "llamando", "answered": "contestó",
          "given_up": "sin respuesta", "capped": "límite del día", "cancelled": "cancelada"}
KIND = {"callback": "devolver llamada", "alert": "aviso de lección", "manual": "llamada manual"}


class LineNotReady(PallayError):
    """The phone line's tables are not there yet (it never started on this data folder)."""


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def insert(db: sqlite_utils.Database, *, kind: str, listener: str, number: str | None,
           lesson_id: int | None, status: str, max_tries: int, retry_seconds: float,
           now: dt.datetime, local_day: str, source: str | None, at: dt.datetime | None = None
           ) -> int:
    """Add one queue row; call inside ``store.write``. Numbers are erased at once for closed rows."""
    done = None if status in OPEN else _stamp(now)
    cursor = db.execute(
        "INSERT INTO ivr_outbound (kind, listener, number, lesson_id, status, max_tries, "
        "retry_seconds, requested_at, local_day, next_try_at, done_at, source) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [kind, listener, number if status in OPEN else None, lesson_id, status, max_tries,
         retry_seconds, _stamp(now), local_day, _stamp(at or now), done, source])
    return cursor.lastrowid


def ready(db: sqlite_utils.Database) -> bool:
    """True once the phone line created its tables in this store."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'ivr_outbound'").fetchone() \
        is not None


def subscribers(db: sqlite_utils.Database) -> list[str]:
    """Pseudonyms of the listeners who asked for new-lesson calls, oldest consent first."""
    if not ready(db):
        return []
    return [r[0] for r in db.execute("SELECT listener FROM ivr_alert_optins ORDER BY consented_at")]


def announce(db: sqlite_utils.Database, settings: IvrSettings, lesson_id: int,
             now: dt.datetime, at: dt.datetime | None = None) -> int:
    """Queue a call with ``lesson_id`` to every subscriber, from ``at``; returns how many.

    The dialer places them inside the calling hours, rate-limited and retried.
    """
    if not ready(db):
        raise LineNotReady("La línea telefónica todavía no se inició en este equipo: no hay a "
                           "quién avisar.")
    row = db.execute("SELECT published FROM lessons WHERE id = ?", [lesson_id]).fetchone()
    if not row:
        raise CatalogError(f"No existe la lección {lesson_id}.")
    batch = f"alert-{lesson_id}-{uuid.uuid4().hex[:8]}"
    day = now.astimezone(zoneinfo.ZoneInfo(settings.timezone)).date().isoformat()
    with store.write(db):
        targets = subscribers(db)
        for listener in targets:
            insert(db, kind="alert", listener=listener, number=None, lesson_id=lesson_id,
                   status="queued", max_tries=settings.alert_tries,
                   retry_seconds=settings.alert_retry_minutes * 60, now=now, local_day=day,
                   source=batch, at=at)
    log.info("alert %s: %d call(s) queued for lesson %d", batch, len(targets), lesson_id)
    return len(targets)


@dataclass(frozen=True)
class QueuedCall:
    """One row of the queue as staff see it: a short pseudonym, never the number."""

    id: int
    kind: str
    status: str
    tries: int
    max_tries: int
    next_try_at: str
    last_result: str
    listener: str
    lesson_id: int | None

    @property
    def open(self) -> bool:
        return self.status in OPEN


def queue(db: sqlite_utils.Database, show_all: bool = False, limit: int = 100) -> list[QueuedCall]:
    """Owed calls (and, with ``show_all``, the finished ones), newest first."""
    if not ready(db):
        return []
    where = "1" if show_all else "status IN ('queued', 'calling')"
    rows = db.execute(f"SELECT id, kind, status, tries, max_tries, next_try_at, last_result, "
                      f"listener, lesson_id FROM ivr_outbound WHERE {where} "
                      f"ORDER BY id DESC LIMIT ?", [int(limit)])
    return [QueuedCall(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "", (r[7] or "")[:8], r[8])
            for r in rows]
