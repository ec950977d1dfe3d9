"""The SQLite store: one file in the data folder, opened the same way by every process.

Several processes write at once (phone line, admin, kiosk logger), so every connection uses WAL, a
busy timeout, and ``write()`` opens ``BEGIN IMMEDIATE``: a deferred transaction that reads first and
then writes fails with "database is locked" under load, an immediate one waits its turn.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

BUSY_TIMEOUT_MS = 30_000

migrations = sqlite_utils.Migrations("pallay")


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the store at ``path`` and bring its schema up to date."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")  # may lose the last commits on power loss, never corrupts
    db.execute("PRAGMA foreign_keys = ON")
    migrate(db, path, migrations)
    return db


def migrate(db: sqlite_utils.Database, path: str | Path,
            migration_set: sqlite_utils.Migrations) -> None:
    """Bring one migration set (the core's, or a part's own) up to date in the store at ``path``.

    A file lock, not a transaction: sqlite-utils runs each migration in its own transaction, and
    two processes starting together must not both create the tables.
    """
    if migration_set.pending(db):
        with open(Path(path).with_suffix(".migrate.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            migration_set.apply(db)


@contextlib.contextmanager
def write(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A write transaction that takes the lock up front (``BEGIN IMMEDIATE``)."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def now() -> str:
    """UTC timestamp as stored everywhere: ISO 8601 with seconds, ``2026-11-24T10:00:00Z``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backup(db: sqlite_utils.Database, target: str | Path) -> Path:
    """Write a consistent copy of the live store to ``target`` (``VACUUM INTO``)."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    db.execute("VACUUM INTO ?", [str(target)])
    return target


@migrations()
def m001_schema(db: sqlite_utils.Database) -> None:
    db["languages"].create({"code": str, "name": str, "position": int}, pk="code")
    db["languages"].insert_all([
        {"code": "es", "name": "Español", "position": 1},
        {"code": "qu", "name": "Runa simi (quechua)", "position": 2},
    ])
    # A menu is a list of up to 9 keyed items: lessons and sub-menus. The root menu is "main".
    db["menus"].create({"slug": str, "title": str, "parent": str, "key": str, "position": int},
                       pk="slug", foreign_keys=[("parent", "menus", "slug")])
    db["menus"].insert({"slug": "main", "title": "Menú principal", "parent": None, "key": None,
                        "position": 0})
    db["lessons"].create({
        "id": int, "slug": str, "title": str, "topic": str, "menu": str, "key": str,
        "keywords": str,  # JSON list of spoken words that pick this lesson
        "position": int, "published": int, "created_at": str, "updated_at": str,
    }, pk="id", foreign_keys=[("menu", "menus", "slug")], not_null={"slug", "title"},
        defaults={"published": 1, "keywords": "[]", "position": 0, "menu": "main"})
    db["lessons"].create_index(["slug"], unique=True)
    # Every prepared media file: variants live under media/<hash>.<variant>.wav.
    db["media"].create({
        "hash": str, "duration_ms": int, "original_name": str, "original_ext": str,
        "source_format": str, "loudness_lufs": float, "created_at": str,
    }, pk="hash")
    # The recording of a lesson in one language (the current one; replaced on re-upload).
    db["recordings"].create({
        "lesson_id": int, "language": str, "media": str, "speaker": str, "synthetic": int,
        "script": str, "created_at": str,
    }, pk=("lesson_id", "language"),
        foreign_keys=[("lesson_id", "lessons", "id"), ("language", "languages", "code"),
                      ("media", "media", "hash")])
    # A prompt is a named bit of speech per language: recorded by a leader or synthesised.
    db["prompts"].create({
        "name": str, "language": str, "text": str, "media": str, "synthetic": int,
        "updated_at": str,
    }, pk=("name", "language"),
        foreign_keys=[("language", "languages", "code"), ("media", "media", "hash")])
    # Listeners are pseudonymous: id is an HMAC of the phone number (or a kiosk-made id).
    db["listeners"].create({"id": str, "language": str, "alerts": int, "first_seen": str,
                            "last_seen": str}, pk="id", defaults={"alerts": 0})
    db["progress"].create({"listener": str, "lesson_id": int, "language": str,
                           "position_ms": int, "updated_at": str}, pk=("listener", "lesson_id"))
    db["devices"].create({"id": str, "kind": str, "name": str, "token_hash": str,
                          "created_at": str, "last_seen": str}, pk="id")
    # Events carry a globally unique id so that a kiosk can push them twice without doubling them.
    db["listen_events"].create({
        "id": str, "channel": str, "device": str, "listener": str, "lesson_id": int,
        "language": str, "input_method": str, "started_at": str, "seconds_heard": float,
        "furthest_ms": int, "duration_ms": int, "quartile": int, "completed": int,
    }, pk="id")
    db["listen_events"].create_index(["lesson_id"])
    db["listen_events"].create_index(["started_at"])
    db["nav_events"].create({
        "id": str, "session": str, "channel": str, "device": str, "listener": str,
        "step": str, "detail": str, "at": str,
    }, pk="id")
    db["nav_events"].create_index(["session"])
    db["nav_events"].create_index(["step"])
    db["messages"].create({
        "id": str, "listener": str, "channel": str, "device": str, "language": str,
        "path": str, "duration_ms": int, "created_at": str, "heard": int,
    }, pk="id", defaults={"heard": 0})


# Statistics read from rollups kept by triggers, so a dashboard query touches thousands of rows, not a
# million events. Days are Peru's local days (UTC-5 all year, no daylight saving): an evening call at
# 22:00 counts on that evening's date, not the next UTC day. Days are stored as days since 1970-01-01.
STATS_DAY_SQL = "CAST(julianday({ts}, '-5 hours') - 2440587.5 AS INTEGER)"
_MEASURES = ("listens", "reached_1", "reached_2", "reached_3", "reached_4", "seconds_heard")


def _rollup_trigger_sql(table: str, keys: dict[str, str]) -> str:
    """One UPSERT statement adding NEW (a listen event) to the rollup ``table`` at ``keys``."""
    values = {**keys, "listens": "1", "reached_1": "NEW.quartile >= 1",
              "reached_2": "NEW.quartile >= 2", "reached_3": "NEW.quartile >= 3",
              "reached_4": "NEW.quartile >= 4", "seconds_heard": "coalesce(NEW.seconds_heard, 0)"}
    updates = ", ".join(f"{m} = {m} + excluded.{m}" for m in _MEASURES)
    return (f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(values.values())}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates};")


@migrations()
def m002_stats_rollups(db: sqlite_utils.Database) -> None:
    day = STATS_DAY_SQL.format(ts="NEW.started_at")
    measures = ("listens INTEGER NOT NULL, reached_1 INTEGER NOT NULL, reached_2 INTEGER NOT NULL, "
                "reached_3 INTEGER NOT NULL, reached_4 INTEGER NOT NULL, seconds_heard REAL NOT NULL")
    # Small integer ids keep the distinct-listener tables compact (listener ids are 32-char hex).
    db.execute("CREATE TABLE stats_listener_ids (n INTEGER PRIMARY KEY, listener TEXT NOT NULL UNIQUE)")
    db.execute("CREATE TABLE stats_device_ids (n INTEGER PRIMARY KEY, channel TEXT NOT NULL, "
               "device TEXT NOT NULL, UNIQUE (channel, device))")
    db.execute(f"CREATE TABLE stats_lesson_day (channel TEXT NOT NULL, day INTEGER NOT NULL, "
               f"lesson_id INTEGER NOT NULL, {measures}, "
               f"PRIMARY KEY (channel, day, lesson_id)) WITHOUT ROWID")
    db.execute(f"CREATE TABLE stats_device_lesson_day (channel TEXT NOT NULL, device TEXT NOT NULL, "
               f"day INTEGER NOT NULL, lesson_id INTEGER NOT NULL, {measures}, "
               f"PRIMARY KEY (device, channel, day, lesson_id)) WITHOUT ROWID")
    db.execute(f"CREATE TABLE stats_device_day (channel TEXT NOT NULL, device TEXT NOT NULL, "
               f"day INTEGER NOT NULL, {measures}, PRIMARY KEY (channel, device, day)) WITHOUT ROWID")
    db.execute("CREATE TABLE stats_lesson_listener_day (lesson_id INTEGER NOT NULL, "
               "listener INTEGER NOT NULL, day INTEGER NOT NULL, device INTEGER NOT NULL, "
               "PRIMARY KEY (lesson_id, listener, day, device)) WITHOUT ROWID")
    db.execute("CREATE TABLE stats_listener_day (listener INTEGER NOT NULL, day INTEGER NOT NULL, "
               "device INTEGER NOT NULL, PRIMARY KEY (listener, day, device)) WITHOUT ROWID")
    # Sessions reaching a step, counted once per session at the step's first occurrence.
    db.execute("CREATE TABLE stats_nav_day (channel TEXT NOT NULL, device TEXT NOT NULL, "
               "day INTEGER NOT NULL, step TEXT NOT NULL, sessions INTEGER NOT NULL, "
               "PRIMARY KEY (channel, device, day, step)) WITHOUT ROWID")
    channel, device = "coalesce(NEW.channel, '')", "coalesce(NEW.device, '')"
    device_n = (f"(SELECT n FROM stats_device_ids WHERE channel = {channel} "
                f"AND device = {device})")
    listener_n = "(SELECT n FROM stats_listener_ids WHERE listener = NEW.listener)"
    db.execute(f"""CREATE TRIGGER stats_listen_rollup AFTER INSERT ON listen_events BEGIN
        {_rollup_trigger_sql("stats_lesson_day",
                             {"channel": channel, "day": day, "lesson_id": "NEW.lesson_id"})}
        {_rollup_trigger_sql("stats_device_lesson_day", {"channel": channel, "device": device,
                             "day": day, "lesson_id": "NEW.lesson_id"})}
        {_rollup_trigger_sql("stats_device_day",
                             {"channel": channel, "device": device, "day": day})}
    END""")
    db.execute(f"""CREATE TRIGGER stats_listen_listeners AFTER INSERT ON listen_events
        WHEN NEW.listener IS NOT NULL AND NEW.listener <> '' BEGIN
        INSERT OR IGNORE INTO stats_device_ids (channel, device) VALUES ({channel}, {device});
        INSERT OR IGNORE INTO stats_listener_ids (listener) VALUES (NEW.listener);
        INSERT OR IGNORE INTO stats_lesson_listener_day VALUES
            (NEW.lesson_id, {listener_n}, {day}, {device_n});
        INSERT OR IGNORE INTO stats_listener_day VALUES ({listener_n}, {day}, {device_n});
    END""")
    # The phone line looks up a caller's completed lessons at every call start.
    db.execute("CREATE INDEX idx_listen_events_listener ON listen_events (listener, completed, lesson_id)")
    # Without it the planner may pick the low-selectivity step index and every insert scans a step.
    db.execute("CREATE INDEX stats_nav_session_step ON nav_events (session, step)")
    db.execute("DROP INDEX idx_nav_events_session")  # the index above serves session lookups too
    nav_day = STATS_DAY_SQL.format(ts="NEW.at")
    db.execute(f"""CREATE TRIGGER stats_nav_rollup AFTER INSERT ON nav_events
        WHEN NOT EXISTS (SELECT 1 FROM nav_events WHERE session = NEW.session AND step = NEW.step
                         AND id <> NEW.id) BEGIN
        INSERT INTO stats_nav_day (channel, device, day, step, sessions)
            VALUES ({channel}, {device}, {nav_day}, NEW.step, 1)
            ON CONFLICT (channel, device, day, step) DO UPDATE SET sessions = sessions + 1;
    END""")


@migrations()
def m003_lesson_quiz(db: sqlite_utils.Database) -> None:
    # The key that answers a lesson's spoken quiz question right ("1" yes / "2" no), or NULL: no quiz.
    db.execute("ALTER TABLE lessons ADD COLUMN quiz_answer TEXT")


@migrations()
def m004_group_listening(db: sqlite_utils.Database) -> None:
    # A kiosk asks how many people heard a lesson together; NULL: not asked (counts as one person).
    db.execute("ALTER TABLE listen_events ADD COLUMN people INTEGER")
    db.execute("CREATE TABLE stats_people_day (channel TEXT NOT NULL, device TEXT NOT NULL, "
               "day INTEGER NOT NULL, people INTEGER NOT NULL, counted INTEGER NOT NULL, "
               "PRIMARY KEY (channel, device, day)) WITHOUT ROWID")
    db.execute(f"""CREATE TRIGGER stats_people_rollup AFTER INSERT ON listen_events BEGIN
        INSERT INTO stats_people_day (channel, device, day, people, counted)
            VALUES (coalesce(NEW.channel, ''), coalesce(NEW.device, ''),
                    {STATS_DAY_SQL.format(ts="NEW.started_at")}, coalesce(NEW.people, 1),
                    NEW.people IS NOT NULL)
            ON CONFLICT (channel, device, day) DO UPDATE SET people = people + excluded.people,
                counted = counted + excluded.counted;
    END""")


@migrations()
def m005_admin_panel(db: sqlite_utils.Database) -> None:
    # Staff of the admin panel: a scrypt hash, never the password; role admin | editor | viewer.
    db.execute("CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
               "password_hash TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)")
    # Failed log-ins, kept a short while for rate limiting (by name and by address).
    db.execute("CREATE TABLE login_failures (name TEXT NOT NULL, address TEXT NOT NULL, "
               "at REAL NOT NULL)")
    db.execute("CREATE INDEX login_failures_at ON login_failures (at)")
    # What staff do with a caller's message; every listen is logged.
    for column in ("note TEXT NOT NULL DEFAULT ''", "tags TEXT NOT NULL DEFAULT '[]'",
                   "urgent INTEGER NOT NULL DEFAULT 0", "done INTEGER NOT NULL DEFAULT 0",
                   "consent INTEGER NOT NULL DEFAULT 0", "lesson_id INTEGER"):
        db.execute(f"ALTER TABLE messages ADD COLUMN {column}")
    db.execute("CREATE TABLE message_listens (message_id TEXT NOT NULL, user TEXT NOT NULL, "
               "at TEXT NOT NULL)")
    db.execute("CREATE INDEX message_listens_message ON message_listens (message_id)")
    # A speaker's consent to be heard, and who recorded it on her behalf.
    db.execute("ALTER TABLE recordings ADD COLUMN consent_at TEXT")
    db.execute("ALTER TABLE recordings ADD COLUMN added_by TEXT")
    # A replaced recording is kept here (its media files are never deleted), so it can be restored.
    # BEFORE INSERT fires for INSERT OR REPLACE too, so every path (CLI, panel) keeps history.
    columns = "lesson_id, language, media, speaker, synthetic, script, created_at, consent_at, added_by"
    db.execute(f"CREATE TABLE recording_history ({columns}, replaced_at TEXT NOT NULL)")
    db.execute(f"""CREATE TRIGGER recordings_keep_history BEFORE INSERT ON recordings BEGIN
        INSERT INTO recording_history ({columns}, replaced_at)
            SELECT {columns}, strftime('%Y-%m-%dT%H:%M:%SZ', 'now') FROM recordings
            WHERE lesson_id = NEW.lesson_id AND language = NEW.language AND media <> NEW.media;
    END""")
    # The dashboard's facets that the other rollups leave out: language, input method, hour.
    day = STATS_DAY_SQL.format(ts="NEW.started_at")
    hour = "CAST(strftime('%H', NEW.started_at, '-5 hours') AS INTEGER)"
    db.execute("CREATE TABLE stats_facet_day (channel TEXT NOT NULL, day INTEGER NOT NULL, "
               "language TEXT NOT NULL, input_method TEXT NOT NULL, hour INTEGER NOT NULL, "
               "listens INTEGER NOT NULL, completions INTEGER NOT NULL, "
               "PRIMARY KEY (channel, day, language, input_method, hour)) WITHOUT ROWID")
    db.execute(f"""CREATE TRIGGER stats_facet_rollup AFTER INSERT ON listen_events BEGIN
        INSERT INTO stats_facet_day VALUES (coalesce(NEW.channel, ''), {day},
            coalesce(NEW.language, ''), coalesce(NEW.input_method, ''), {hour}, 1,
            NEW.quartile >= 4)
        ON CONFLICT (channel, day, language, input_method, hour) DO UPDATE SET
            listens = listens + 1, completions = completions + excluded.completions;
    END""")
    db.execute("INSERT INTO stats_facet_day SELECT coalesce(channel, ''), "
               f"{STATS_DAY_SQL.format(ts='started_at')}, coalesce(language, ''), "
               "coalesce(input_method, ''), CAST(strftime('%H', started_at, '-5 hours') AS INTEGER), "
               "count(*), sum(quartile >= 4) FROM listen_events GROUP BY 1, 2, 3, 4, 5")
