"""Events and messages leaving an edge for the central server, idempotently, by id.

Edge side: per stream (listens, navs, messages) a cursor in ``sync_sent`` says up to which rowid
the server has acknowledged every row. A batch is the rows past the cursor in rowid order; the
cursor moves only over rows whose ids came back acknowledged, so a power cut between "stored" and
"marked" sends them again, and the server keeps them once (``INSERT OR IGNORE`` by id). Rowids only
grow here: events are never deleted, and SQLite serialises writers, so a committed row is never
overtaken by a later rowid that commits before it.

Server side: ``import_batch`` stores a batch and answers with the ids it holds. It also records, per
edge and edge store, the highest rowid delivered, which a USB content pack carries back to the
kiosk as its acknowledgement (``acks``/``apply_acks``). The store id is a random id made the first
time an edge sends; a kiosk whose database was recreated has a new one, so an old acknowledgement
can never skip its new events.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

import sqlite_utils

from audio_lessons import events, store
from audio_lessons.errors import SyncError
from audio_lessons.media import fsync_dir
from audio_lessons.sync import get_state

log = logging.getLogger(__name__)

STREAMS = {"listens": "listen_events", "navs": "nav_events"}
LISTEN_FIELDS = tuple(f.name for f in fields(events.ListenEvent))
NAV_FIELDS = tuple(f.name for f in fields(events.NavEvent))
_FIELDS = {"listens": LISTEN_FIELDS, "navs": NAV_FIELDS}
MESSAGE_FIELDS = ("id", "listener", "channel", "language", "duration_ms", "created_at")
_ID = re.compile(r"^[0-9a-f]{32}$")
_EXT = re.compile(r"^[a-z0-9]{1,5}$")


def store_id(db: sqlite_utils.Database) -> str:
    """This edge's store id (made once, kept in ``sync_state``)."""
    found = get_state(db, "store_id")
    if found:
        return found
    with store.write(db):
        db.conn.execute("INSERT OR IGNORE INTO sync_state VALUES ('store_id', ?)",
                        [uuid.uuid4().hex])
    return get_state(db, "store_id")


def sent_upto(db: sqlite_utils.Database, stream: str) -> int:
    row = db.execute("SELECT upto FROM sync_sent WHERE stream = ?", [stream]).fetchone()
    return row[0] if row else 0


def _advance(db: sqlite_utils.Database, stream: str, upto: int) -> None:
    db.conn.execute("INSERT INTO sync_sent VALUES (?, ?) ON CONFLICT (stream) DO UPDATE "
                    "SET upto = max(upto, excluded.upto)", [stream, upto])


@dataclass(frozen=True)
class Batch:
    """Rows past the cursors: ``rows[stream]`` is a list of (rowid, event as a dict)."""

    store: str
    rows: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(r) for r in self.rows.values())

    def upto(self) -> dict[str, int]:
        return {s: rows[-1][0] for s, rows in self.rows.items() if rows}

    def to_dict(self) -> dict:
        body = {s: [row for _, row in self.rows.get(s, [])] for s in STREAMS}
        return {"format": 1, "store": self.store, "upto": self.upto(), **body}


def pending(db: sqlite_utils.Database, limit: int, after: dict[str, int] | None = None) -> Batch:
    """Up to ``limit`` rows of each stream not yet acknowledged (past ``after`` if given)."""
    rows = {stream: stream_rows(db, stream, (after or {}).get(stream, sent_upto(db, stream)),
                                limit) for stream in STREAMS}
    return Batch(store_id(db), rows)


def stream_rows(db: sqlite_utils.Database, stream: str, after: int,
                limit: int) -> list[tuple[int, dict]]:
    """(rowid, event) of up to ``limit`` rows of ``stream`` past rowid ``after``."""
    names = _FIELDS[stream]
    cursor = db.execute(f"SELECT rowid, {', '.join(names)} FROM {STREAMS[stream]} "
                        "WHERE rowid > ? ORDER BY rowid LIMIT ?", [after, limit])
    return [(r[0], dict(zip(names, r[1:], strict=True))) for r in cursor]


def pending_counts(db: sqlite_utils.Database) -> dict[str, int]:
    counts = {s: db.execute(f"SELECT count(*) FROM {t} WHERE rowid > ?",
                            [sent_upto(db, s)]).fetchone()[0] for s, t in STREAMS.items()}
    counts["messages"] = db.execute("SELECT count(*) FROM messages WHERE rowid > ?",
                                    [sent_upto(db, "messages")]).fetchone()[0]
    return counts


def mark_sent(db: sqlite_utils.Database, batch: Batch, acked: dict[str, list[str]]) -> int:
    """Move each cursor over the leading rows the server acknowledged; returns how many."""
    moved = 0
    with store.write(db):
        for stream, rows in batch.rows.items():
            ok = set(acked.get(stream, ()))
            last = None
            for rowid, row in rows:
                if row["id"] not in ok:
                    break
                last, moved = rowid, moved + 1
            if last is not None:
                _advance(db, stream, last)
    if moved < batch.size:
        log.warning("server acknowledged %d of %d events; the rest go again", moved, batch.size)
    return moved


# --- the server side ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Ack:
    acked: dict[str, list[str]]  # ids the server holds now, per stream (new, old or quarantined)
    new: dict[str, int]
    rejected: dict[str, int]

    def to_dict(self) -> dict:
        return {"acked": self.acked, "new": self.new, "rejected": self.rejected}


def _parse(stream: str, row, edge: str):
    if not isinstance(row, dict):
        raise TypeError("an event must be an object")
    values = {name: row.get(name) for name in _FIELDS[stream]}
    values["device"] = edge  # an edge speaks for itself only
    cls = events.ListenEvent if stream == "listens" else events.NavEvent
    return cls(**values)


def import_batch(db: sqlite_utils.Database, edge: str, payload: dict,
                 record_cursor: bool = True) -> Ack:
    """Store a batch pushed by ``edge``; events the core refuses are quarantined, not dropped."""
    if not isinstance(payload, dict):
        raise SyncError("El lote de eventos no es válido.")
    parsed, acked, bad = {}, {}, []
    for stream in STREAMS:
        rows = payload.get(stream) or []
        if not isinstance(rows, list):
            raise SyncError("El lote de eventos no es válido.")
        parsed[stream], acked[stream] = [], []
        for row in rows:
            try:
                parsed[stream].append(_parse(stream, row, edge))
            except (TypeError, ValueError) as exc:
                bad.append((stream, str(row.get("id") if isinstance(row, dict) else ""), row, exc))
    new = events.record_many(db, parsed["listens"], parsed["navs"])
    for stream in STREAMS:
        acked[stream] = [e.id for e in parsed[stream]]
    acked_bad = _quarantine(db, edge, bad)
    for stream, event_id in acked_bad:
        acked[stream].append(event_id)
    if record_cursor:
        record_delivery(db, edge, payload.get("store"), payload.get("upto"))
    return Ack(acked, dict(zip(STREAMS, new, strict=True)),
               {s: sum(1 for b in bad if b[0] == s) for s in STREAMS})


def _quarantine(db: sqlite_utils.Database, edge: str, bad: list) -> list[tuple[str, str]]:
    kept = []
    with store.write(db):
        for stream, event_id, row, exc in bad:
            if not event_id:
                log.warning("edge %s sent a %s event without an id; dropped: %r", edge, stream, row)
                continue
            log.warning("edge %s: %s event %s refused: %s", edge, stream, event_id, exc)
            db.conn.execute("INSERT OR IGNORE INTO sync_rejected VALUES (?, ?, ?, ?, ?, ?)",
                            [stream, event_id, edge, json.dumps(row, default=str), str(exc),
                             store.now()])
            kept.append((stream, event_id))
    return kept


def record_delivery(db: sqlite_utils.Database, edge: str, store_key, upto) -> None:
    """Note that ``edge``'s store has delivered every row up to ``upto[stream]``."""
    if not isinstance(store_key, str) or not isinstance(upto, dict):
        return
    rows = [(edge, store_key, s, int(n), store.now()) for s, n in upto.items()
            if s in (*STREAMS, "messages") and isinstance(n, int)]
    with store.write(db):
        db.conn.executemany(
            "INSERT INTO sync_edge_cursors VALUES (?, ?, ?, ?, ?) ON CONFLICT (edge, store, stream) "
            "DO UPDATE SET upto = max(upto, excluded.upto), at = excluded.at", rows)


def acks(db: sqlite_utils.Database) -> list[dict]:
    """What every edge's store has delivered (a content pack carries it back)."""
    return [{"edge": e, "store": s, "stream": st, "upto": n} for e, s, st, n in db.execute(
        "SELECT edge, store, stream, upto FROM sync_edge_cursors ORDER BY edge, store, stream")]


def apply_acks(db: sqlite_utils.Database, edge: str | None, found: list) -> int:
    """Take the server's acknowledgements for this edge and store; returns streams moved."""
    mine = store_id(db)
    ours = [a for a in found if isinstance(a, dict) and a.get("edge") == edge
            and a.get("store") == mine and isinstance(a.get("upto"), int)]
    with store.write(db):
        for ack in ours:
            _advance(db, ack["stream"], ack["upto"])
    return len(ours)


# --- messages -----------------------------------------------------------------------------------

def pending_messages(db: sqlite_utils.Database, messages_dir: Path, limit: int = 100,
                     after: int | None = None) -> list[tuple[int, dict, Path | None]]:
    """(rowid, metadata, file or None if it is gone) of messages not yet acknowledged."""
    start = sent_upto(db, "messages") if after is None else after
    found = []
    for row in db.execute(f"SELECT rowid, {', '.join(MESSAGE_FIELDS)}, path FROM messages "
                          "WHERE rowid > ? ORDER BY rowid LIMIT ?", [start, limit]):
        meta = dict(zip(MESSAGE_FIELDS, row[1:-1], strict=True))
        path = Path(messages_dir) / row[-1] if row[-1] else None
        meta["ext"] = (path.suffix.lstrip(".").lower() if path else "") or "wav"
        found.append((row[0], meta, path if path and path.is_file() else None))
    return found


def mark_message_sent(db: sqlite_utils.Database, rowid: int) -> None:
    with store.write(db):
        _advance(db, "messages", rowid)


def check_message(meta: dict) -> dict:
    """The metadata of a pushed message, checked; SyncError if unusable."""
    try:
        clean = {k: meta.get(k) for k in (*MESSAGE_FIELDS, "ext")}
        clean["duration_ms"] = int(clean["duration_ms"] or 0)
        ok = (_ID.match(str(clean["id"])) and _EXT.match(str(clean["ext"]))
              and clean["channel"] in events.CHANNELS and isinstance(clean["language"], str))
        events._check_timestamp(clean["created_at"], "created_at")
    except (TypeError, ValueError) as exc:
        raise SyncError(f"Los datos del mensaje no son válidos ({exc}).") from exc
    if not ok:
        raise SyncError("Los datos del mensaje no son válidos.")
    return clean


def store_message(db: sqlite_utils.Database, messages_dir: Path, edge: str, meta: dict,
                  data: bytes) -> bool:
    """Keep a message pushed by ``edge`` (file first, then row); False if it was already here."""
    meta = check_message(meta)
    if db.execute("SELECT 1 FROM messages WHERE id = ?", [meta["id"]]).fetchone():
        return False
    messages_dir = Path(messages_dir)
    messages_dir.mkdir(parents=True, exist_ok=True)
    name = f"{meta['id']}.{meta['ext']}"
    tmp = messages_dir / f".{name}.{os.getpid()}.part"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, messages_dir / name)
    fsync_dir(messages_dir)
    with store.write(db):
        db.conn.execute(
            "INSERT OR IGNORE INTO messages (id, listener, channel, device, language, path, "
            "duration_ms, created_at, heard) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            [meta["id"], meta["listener"], meta["channel"], edge, meta["language"], name,
             meta["duration_ms"], meta["created_at"]])
    log.info("message %s from edge %s stored (%d bytes)", meta["id"], edge, len(data))
    return True
