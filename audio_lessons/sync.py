"""Content sync between the central server and its edges: the manifest, staging and the switch.

The server describes its published catalogue as a manifest: the catalogue rows an edge needs and
every media file they use, with size and SHA-256; its version is the hash of all that. An edge
fetches the files it lacks into a staging folder (over HTTP, or from a USB pack), checks each
one's hash, and only when every file is there does it switch:

1. staged files are renamed into ``media/``: their names are content hashes the live catalogue
   does not use, so nothing changes for a listener yet;
2. the catalogue rows are replaced, and the new version recorded, in one ``BEGIN IMMEDIATE``
   transaction;
3. media files that neither the previous nor the new catalogue uses are removed (a session
   that started just before the switch still finds its files).

A power cut before step 2 commits leaves the old content and some unused files; after it, the new
content. Staged files are renamed only after an fsync, so a half-downloaded file is never taken
for a whole one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlite_utils

from audio_lessons import store
from audio_lessons.errors import SyncError
from audio_lessons.media import VARIANTS, fsync_dir

log = logging.getLogger(__name__)

FORMAT = 1
TABLES = ("languages", "menus", "media", "lessons", "recordings", "prompts")  # parents first
KEYS = {"languages": ("code",), "menus": ("slug",), "media": ("hash",), "lessons": ("id",),
        "recordings": ("lesson_id", "language"), "prompts": ("name", "language")}
_FILE_NAME = re.compile(rf"^[0-9a-f]{{32}}\.({'|'.join(VARIANTS)})\.wav$")
_MEDIA_FILE = re.compile(r"^([0-9a-f]{32})\.")
CHUNK = 1 << 20

migrations = sqlite_utils.Migrations("pallay-sync")


@migrations()
def m001_sync(db: sqlite_utils.Database) -> None:
    # edge: content version, store id, edge name
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # both: SHA-256 of media files already checked (files are immutable under their names)
    db.execute("CREATE TABLE sync_files (name TEXT PRIMARY KEY, size INTEGER NOT NULL, "
               "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL)")
    # edge: events up to this rowid are acknowledged by the server, per stream
    db.execute("CREATE TABLE sync_sent (stream TEXT PRIMARY KEY, upto INTEGER NOT NULL)")
    # server: what each edge's store has delivered, per stream (sent back to it on a USB pack)
    db.execute("CREATE TABLE sync_edge_cursors (edge TEXT NOT NULL, store TEXT NOT NULL, "
               "stream TEXT NOT NULL, upto INTEGER NOT NULL, at TEXT NOT NULL, "
               "PRIMARY KEY (edge, store, stream))")
    # server: pushed events the core refused (kept, not dropped, so someone can look)
    db.execute("CREATE TABLE sync_rejected (stream TEXT NOT NULL, id TEXT NOT NULL, "
               "edge TEXT NOT NULL, row TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL, "
               "PRIMARY KEY (stream, id))")


def connect(path: str | Path) -> sqlite_utils.Database:
    """The store with the sync tables added (their own migration set)."""
    db = store.connect(path)
    store.migrate(db, path, migrations)
    return db


def get_state(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def set_state(db: sqlite_utils.Database, key: str, value: str) -> None:
    """Call inside a write transaction."""
    db.conn.execute("INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) "
                    "DO UPDATE SET value = excluded.value", [key, value])


def current_version(db: sqlite_utils.Database) -> str | None:
    """The manifest version this edge's content comes from (None: never synced)."""
    return get_state(db, "content_version")


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """One sync or pack import at a time on this data folder; SyncError if one is running."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SyncError("Ya hay una sincronización en curso en este equipo; espere a que "
                            "termine.") from exc
        yield


# --- the manifest -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileEntry:
    name: str  # <media hash>.<variant>.wav
    variant: str
    size: int
    sha256: str


def is_media_name(name: str) -> bool:
    """True for ``<hash>.<variant>.wav``, the only files the sync moves."""
    return bool(_FILE_NAME.match(name))


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Manifest:
    """The published catalogue: ``tables`` maps a table to its columns and rows."""

    version: str
    tables: dict[str, dict]
    files: tuple[FileEntry, ...]
    created_at: str = ""

    def wanted(self, variants: Iterable[str]) -> list[FileEntry]:
        """The files of ``variants``; SyncError for an unknown one (it would switch to no audio)."""
        chosen = set(variants)
        if not chosen or not chosen <= set(VARIANTS):
            raise SyncError(f"[sync] variants = {sorted(chosen)} no sirve: use «kiosk» en un "
                            "quiosco o «phone» en una línea telefónica.")
        return [f for f in self.files if f.variant in chosen]

    def body(self) -> dict:
        return {"format": FORMAT, "tables": self.tables, "files": [asdict(f) for f in self.files]}

    def to_dict(self) -> dict:
        return {**self.body(), "version": self.version, "created_at": self.created_at}

    @classmethod
    def make(cls, tables: dict[str, dict], files: Iterable[FileEntry]) -> Manifest:
        files = tuple(files)
        body = {"format": FORMAT, "tables": tables, "files": [asdict(f) for f in files]}
        return cls(hashlib.sha256(_canonical(body)).hexdigest()[:32], tables, files, store.now())

    @classmethod
    def from_dict(cls, data) -> Manifest:
        """Check a manifest received from elsewhere; SyncError if it is damaged or foreign."""
        try:
            if data["format"] != FORMAT:
                raise SyncError(f"El servidor usa otro formato de contenido ({data['format']}); "
                                "actualice pallay en este equipo.")
            files = tuple(FileEntry(str(f["name"]), str(f["variant"]), int(f["size"]),
                                    str(f["sha256"])) for f in data["files"])
            tables = {t: {"columns": list(data["tables"][t]["columns"]),
                          "rows": list(data["tables"][t]["rows"])} for t in TABLES}
            made = cls(str(data["version"]), tables, files, str(data.get("created_at", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _damaged(f"malformed manifest: {exc!r}") from exc
        if any(not is_media_name(f.name) or f.name.split(".")[1] != f.variant or f.size < 0
               for f in files):
            raise _damaged("manifest names a file outside the media layout")
        if hashlib.sha256(_canonical(made.body())).hexdigest()[:32] != made.version:
            raise _damaged("manifest content does not match its version")
        return made


def _damaged(detail: str) -> SyncError:
    log.warning("content refused: %s", detail)
    return SyncError("El contenido recibido está dañado o incompleto; se mantiene el actual. "
                     "Vuelva a intentar la sincronización.")


def _rows(db: sqlite_utils.Database, sql: str, args=()) -> dict:
    cursor = db.execute(sql, list(args))
    return {"columns": [d[0] for d in cursor.description], "rows": [list(r) for r in cursor]}


def published_tables(db: sqlite_utils.Database) -> dict[str, dict]:
    """The catalogue rows an edge needs: published lessons, their recordings, menus, prompts."""
    lessons = "SELECT id FROM lessons WHERE published = 1"
    used = (f"SELECT media FROM recordings WHERE lesson_id IN ({lessons}) "
            "UNION SELECT media FROM prompts WHERE media IS NOT NULL")
    return {
        "languages": _rows(db, "SELECT * FROM languages ORDER BY code"),
        "menus": _rows(db, "SELECT * FROM menus ORDER BY slug"),
        "media": _rows(db, f"SELECT * FROM media WHERE hash IN ({used}) ORDER BY hash"),
        "lessons": _rows(db, "SELECT * FROM lessons WHERE published = 1 ORDER BY id"),
        "recordings": _rows(db, f"SELECT * FROM recordings WHERE lesson_id IN ({lessons}) "
                                "ORDER BY lesson_id, language"),
        "prompts": _rows(db, "SELECT * FROM prompts ORDER BY name, language"),
    }


def build_manifest(db: sqlite_utils.Database, media_dir: Path) -> Manifest:
    """The server's manifest of what is published now (file hashes cached in ``sync_files``)."""
    tables = published_tables(db)
    hashes = [row[0] for row in tables["media"]["rows"]]  # "hash" is the first column
    files, learnt = [], []
    for digest in hashes:
        for variant in VARIANTS:
            path = Path(media_dir) / f"{digest}.{variant}.wav"
            try:
                sha, new = file_sha256(db, path)
            except FileNotFoundError:
                log.error("media file %s is missing: edges will not get it", path.name)
                continue
            files.append(FileEntry(path.name, variant, path.stat().st_size, sha))
            learnt += new
    remember_hashes(db, learnt)
    return Manifest.make(tables, files)


# --- checked files ------------------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(db: sqlite_utils.Database, path: Path) -> tuple[str, list[tuple]]:
    """(SHA-256 of ``path``, cache rows to remember); the cache is keyed by name, size and mtime."""
    st = path.stat()
    row = db.execute("SELECT sha256 FROM sync_files WHERE name = ? AND size = ? AND mtime_ns = ?",
                     [path.name, st.st_size, st.st_mtime_ns]).fetchone()
    if row:
        return row[0], []
    sha = sha256_of(path)
    return sha, [(path.name, st.st_size, st.st_mtime_ns, sha)]


def remember_hashes(db: sqlite_utils.Database, rows: list[tuple]) -> None:
    if rows:
        with store.write(db):
            db.conn.executemany("INSERT OR REPLACE INTO sync_files VALUES (?, ?, ?, ?)", rows)


def _in_media(db: sqlite_utils.Database, media_dir: Path, entry: FileEntry,
              learnt: list[tuple]) -> bool:
    path = media_dir / entry.name
    try:
        if path.stat().st_size != entry.size:
            return False
        sha, new = file_sha256(db, path)
    except FileNotFoundError:
        return False
    learnt += new
    return sha == entry.sha256


class Staging:
    """The folder where files wait, checked, until the switch: ``<name>.part`` while incomplete."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def part(self, entry: FileEntry) -> Path:
        return self.folder / f"{entry.name}.part"

    def done(self, entry: FileEntry) -> Path:
        return self.folder / entry.name

    def has(self, entry: FileEntry) -> bool:
        # a staged file was renamed here only after its hash matched and it was fsynced
        with contextlib.suppress(FileNotFoundError):
            return self.done(entry).stat().st_size == entry.size
        return False

    def finish(self, entry: FileEntry) -> None:
        """Check the complete ``.part`` file and stage it; SyncError (part removed) if damaged."""
        part = self.part(entry)
        with open(part, "rb+") as f:
            os.fsync(f.fileno())
        if part.stat().st_size != entry.size or sha256_of(part) != entry.sha256:
            part.unlink()
            raise _damaged(f"{entry.name}: size or SHA-256 differs from the manifest")
        os.replace(part, self.done(entry))
        fsync_dir(self.folder)

    def prune(self, keep: Iterable[FileEntry]) -> None:
        """Remove staged and partial files the current manifest no longer names."""
        names = {e.name for e in keep} | {f"{e.name}.part" for e in keep}
        for path in self.folder.iterdir():
            if path.is_file() and path.name != ".lock" and path.name not in names:
                path.unlink(missing_ok=True)


def missing(db: sqlite_utils.Database, media_dir: Path, staging: Staging, manifest: Manifest,
            variants: Iterable[str]) -> list[FileEntry]:
    """The files of ``manifest`` this edge must still fetch (neither in media/ nor staged)."""
    learnt: list[tuple] = []
    found = [e for e in manifest.wanted(variants)
             if not staging.has(e) and not _in_media(db, Path(media_dir), e, learnt)]
    remember_hashes(db, learnt)
    return found


# --- the switch ---------------------------------------------------------------------------------

def switch(db: sqlite_utils.Database, media_dir: Path, staging: Staging, manifest: Manifest,
           variants: Iterable[str]) -> bool:
    """Make ``manifest`` this edge's content (see the module docstring); False if it already is."""
    if current_version(db) == manifest.version:
        return False
    if db.execute("SELECT 1 FROM devices WHERE token_hash IS NOT NULL LIMIT 1").fetchone():
        raise SyncError("Este equipo es el servidor central (tiene quioscos registrados): "
                        "el contenido se importa en los quioscos, no aquí.")
    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    wanted = manifest.wanted(variants)
    lacking = missing(db, media_dir, staging, manifest, variants)
    if lacking:
        raise SyncError(f"Faltan {len(lacking)} archivos del contenido nuevo; se mantiene el "
                        "actual. Vuelva a sincronizar.")
    placed = _place(media_dir, staging, wanted)
    with store.write(db):
        before = _used_hashes(db)
        _apply_rows(db, manifest)
        db.conn.executemany("INSERT OR REPLACE INTO sync_files VALUES (?, ?, ?, ?)", placed)
        set_state(db, "content_version", manifest.version)
    _collect(db, media_dir, before | _used_hashes(db))
    log.info("content switched to %s (%d files placed)", manifest.version, len(placed))
    return True


def _place(media_dir: Path, staging: Staging, wanted: list[FileEntry]) -> list[tuple]:
    placed = []
    for entry in wanted:
        if staging.has(entry):
            target = media_dir / entry.name
            os.replace(staging.done(entry), target)
            placed.append((entry.name, entry.size, target.stat().st_mtime_ns, entry.sha256))
    if placed:
        fsync_dir(media_dir)
        fsync_dir(staging.folder)
    return placed


def _used_hashes(db: sqlite_utils.Database) -> set[str]:
    return {row[0] for row in db.execute(
        "SELECT media FROM recordings UNION SELECT media FROM prompts WHERE media IS NOT NULL")}


def _apply_rows(db: sqlite_utils.Database, manifest: Manifest) -> None:
    """Make the catalogue tables equal to the manifest's, touching only rows that differ."""
    db.conn.execute("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT; resets after it
    plans = {table: _diff(db, table, manifest.tables[table]) for table in TABLES}
    for table in reversed(TABLES):
        keys, gone, _, _ = plans[table]
        if gone:
            where = " AND ".join(f"{k} = ?" for k in keys)
            db.conn.executemany(f"DELETE FROM {table} WHERE {where}", gone)
    for table in TABLES:
        _, _, columns, added = plans[table]
        if added:
            marks = ", ".join("?" * len(columns))
            db.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                added)


def _diff(db: sqlite_utils.Database, table: str, incoming: dict):
    """(key columns, keys to delete, columns, rows to insert) for one table."""
    mine = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    columns = [c for c in incoming["columns"] if c in mine]  # newer servers may add columns
    keys = KEYS[table]
    if not set(keys) <= set(columns):
        raise _damaged(f"{table}: manifest lacks key columns {keys}")
    pick = [incoming["columns"].index(c) for c in columns]
    new = {tuple(r[i] for i in pick) for r in incoming["rows"]}
    old = set(db.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall())
    at = [columns.index(k) for k in keys]
    # a changed row is deleted and inserted again: a unique slug moving between ids cannot clash
    gone = sorted({tuple(r[i] for i in at) for r in old - new}, key=repr)
    return keys, gone, columns, sorted(new - old, key=repr)


def _collect(db: sqlite_utils.Database, media_dir: Path, keep: set[str]) -> None:
    """Remove media files of hashes no catalogue here uses any more (and their cache rows)."""
    removed = []
    for path in media_dir.iterdir():
        found = _MEDIA_FILE.match(path.name)
        if found and found.group(1) not in keep and path.is_file():
            path.unlink(missing_ok=True)
            removed.append((path.name,))
    if removed:
        with store.write(db):
            db.conn.executemany("DELETE FROM sync_files WHERE name = ?", removed)
        log.info("removed %d media files no catalogue uses", len(removed))
