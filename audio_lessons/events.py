"""Listening and navigation events: what the phone line and the kiosks record, and stats read.

Every event carries a globally unique id. Storing is idempotent by that id: a kiosk that lost power
before hearing "stored" pushes the same events again, and they are kept once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from audio_lessons import store

log = logging.getLogger(__name__)

CHANNELS = ("phone", "kiosk", "simulator")  # simulator: the admin panel's phone simulator
INPUT_METHODS = ("key", "voice", "button", "auto")
NAV_STEPS = (
    "welcome",  # the greeting played
    "language",  # a language chosen
    "menu",  # a menu offered (detail: its slug)
    "lesson_start",  # a lesson began playing (detail: lesson id)
    "lesson_75",  # three quarters of a lesson heard (detail: lesson id)
    "lesson_end",  # a lesson heard to the end
    "resume",  # an offer to resume taken
    "message",  # a message recorded
    "quiz",  # a lesson's question answered (detail: "right" or "wrong")
    "no_input",  # silence or a wrong key after all attempts
    "error",  # a "sorry" prompt played
    "hangup",  # the caller hung up or the kiosk session ended
)
END_SLACK_MS = 2_000  # the closing seconds (music, silence) count as having heard the end
QUARTILE_WEIGHTS = (0.0, 0.3, 0.6, 0.83, 1.0)  # "effective completion" by the highest quartile reached
MAX_PEOPLE = 999  # listeners at one listen (a kiosk asks 1-9; a hall screening may report more)


def new_id() -> str:
    """A fresh event id (uuid4, hex)."""
    return uuid.uuid4().hex


def quartile(furthest_ms: int, duration_ms: int) -> int:
    """The highest quarter of a lesson reached: 0 (under 25%) to 4 (the end)."""
    if not duration_ms or duration_ms <= 0 or not furthest_ms or furthest_ms <= 0:
        return 0
    slack = min(END_SLACK_MS, duration_ms // 10)  # short clips: the tail stays a small share
    if furthest_ms >= duration_ms - slack:
        return 4
    return min(3, furthest_ms * 4 // duration_ms)


def _check_timestamp(value: str, name: str) -> None:
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must look like 2026-11-24T10:00:00Z, got {value!r}") from exc
    if parsed.year < 2000:
        raise ValueError(f"{name} is before 2000: {value!r} (a kiosk clock that was never set?)")


@dataclass(frozen=True)
class ListenEvent:
    """One lesson playback: from its start until the listener moved on, hung up or it ended."""

    id: str
    channel: str
    device: str
    listener: str | None
    lesson_id: int
    language: str
    input_method: str
    started_at: str
    seconds_heard: float
    furthest_ms: int
    duration_ms: int
    people: int | None = None  # how many listened together (a kiosk asks after a lesson)

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {self.channel!r}")
        if self.input_method not in INPUT_METHODS:
            raise ValueError(f"input_method must be one of {INPUT_METHODS}, got {self.input_method!r}")
        if not self.id:
            raise ValueError("a listen event needs an id")
        if self.furthest_ms < 0 or self.duration_ms < 0 or self.seconds_heard < 0:
            raise ValueError("negative position, duration or time heard")
        if self.people is not None and not 1 <= self.people <= MAX_PEOPLE:
            raise ValueError(f"people must be 1 to {MAX_PEOPLE}, got {self.people!r}")
        _check_timestamp(self.started_at, "started_at")

    @property
    def quartile(self) -> int:
        return quartile(self.furthest_ms, self.duration_ms)

    @property
    def completed(self) -> bool:
        return self.quartile == 4


@dataclass(frozen=True)
class NavEvent:
    """One step of a call or kiosk session through the menus (see NAV_STEPS)."""

    id: str
    session: str
    channel: str
    device: str
    listener: str | None
    step: str
    detail: str
    at: str

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {self.channel!r}")
        if self.step not in NAV_STEPS:
            raise ValueError(f"step must be one of {NAV_STEPS}, got {self.step!r}")
        if not self.id or not self.session:
            raise ValueError("a navigation event needs an id and a session")
        _check_timestamp(self.at, "at")


_LISTEN_SQL = (
    "INSERT OR IGNORE INTO listen_events (id, channel, device, listener, lesson_id, language, "
    "input_method, started_at, seconds_heard, furthest_ms, duration_ms, quartile, completed, "
    "people) VALUES (:id, :channel, :device, :listener, :lesson_id, :language, :input_method, "
    ":started_at, :seconds_heard, :furthest_ms, :duration_ms, :quartile, :completed, :people)")
_NAV_SQL = (
    "INSERT OR IGNORE INTO nav_events (id, session, channel, device, listener, step, detail, at) "
    "VALUES (:id, :session, :channel, :device, :listener, :step, :detail, :at)")


def _listen_row(event: ListenEvent) -> dict:
    # vars(), not asdict(): asdict deep-copies every field and costs more than the insert itself
    return {**vars(event), "quartile": event.quartile, "completed": int(event.completed)}


def record_listen(db: sqlite_utils.Database, event: ListenEvent) -> bool:
    """Store one listen event; False if an event with its id was already stored."""
    with store.write(db):
        return db.conn.execute(_LISTEN_SQL, _listen_row(event)).rowcount == 1


def record_nav(db: sqlite_utils.Database, event: NavEvent) -> bool:
    """Store one navigation event; False if an event with its id was already stored."""
    with store.write(db):
        return db.conn.execute(_NAV_SQL, vars(event)).rowcount == 1


def record_many(db: sqlite_utils.Database, listens: Iterable[ListenEvent] = (),
                navs: Iterable[NavEvent] = ()) -> tuple[int, int]:
    """Store a batch in one transaction (how kiosks sync); returns how many were new of each."""
    listen_rows = [_listen_row(e) for e in listens]
    nav_rows = [vars(e) for e in navs]
    with store.write(db):
        # rowcount sums sqlite3_changes(), which leaves out the rows written by the rollup triggers.
        new_listens = db.conn.executemany(_LISTEN_SQL, listen_rows).rowcount if listen_rows else 0
        new_navs = db.conn.executemany(_NAV_SQL, nav_rows).rowcount if nav_rows else 0
    if len(listen_rows) != new_listens or len(nav_rows) != new_navs:
        log.info("batch of %d listens, %d navs: %d and %d were already stored", len(listen_rows),
                 len(nav_rows), len(listen_rows) - new_listens, len(nav_rows) - new_navs)
    return new_listens, new_navs
