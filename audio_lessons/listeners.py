"""Listeners: pseudonymous ids, preferred language, alerts and where each stopped in a lesson.

A phone number never enters the database: the listener id is an HMAC of the number under a secret
kept in a file beside the database, so a copied database alone cannot be reversed by trying every
number. Women share phones, so progress keyed on the id is a hint, never a certainty.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path

import sqlite_utils

from audio_lessons import store
from audio_lessons.catalog import check_language
from audio_lessons.errors import ConfigError

log = logging.getLogger(__name__)

SECRET_BYTES = 32
PSEUDONYM_CHARS = 32
COUNTRY_CODE = "51"  # Peru
NATIONAL_DIGITS = 9  # Peruvian mobile numbers: 9 digits, starting with 9


def load_or_create_secret(path: str | Path) -> bytes:
    """The pseudonym key at ``path``; created (32 random bytes, mode 0600) if missing.

    Creation is atomic and never overwrites: the key is written to a private temporary file and
    hard-linked into place, so two processes starting together end up with the same key.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(SECRET_BYTES))
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, path)
                log.info("created pseudonym secret %s", path)
            except FileExistsError:
                pass  # another process won the race; use its key
        finally:
            tmp.unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) != SECRET_BYTES:
        raise ConfigError(f"{path} debe tener {SECRET_BYTES} bytes y tiene {len(secret)}: "
                          "restáurelo desde una copia de seguridad (uno nuevo partiría en dos la "
                          "historia de cada oyente).")
    return secret


def normalise_number(number: str) -> str:
    """Digits of a phone number in national form: "+51 987 654 321" and "987654321" agree."""
    digits = re.sub(r"\D", "", number or "")
    digits = digits.removeprefix("00")
    if digits.startswith(COUNTRY_CODE) and len(digits) == len(COUNTRY_CODE) + NATIONAL_DIGITS:
        digits = digits[len(COUNTRY_CODE):]
    return digits


def pseudonym(secret: bytes, number: str) -> str:
    """The listener id for a phone number: HMAC-SHA256 of its normalised digits, 32 hex chars."""
    digits = normalise_number(number)
    if not digits:
        raise ValueError("no digits in the caller number (withheld?): use an anonymous session")
    return hmac.new(secret, digits.encode("ascii"), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def remember(db: sqlite_utils.Database, listener_id: str, language: str | None = None) -> None:
    """Note that a listener was here (and her language, when she chose one)."""
    if language is not None:
        check_language(db, language)
    stamp = store.now()
    with store.write(db):
        db.conn.execute(
            "INSERT INTO listeners (id, language, alerts, first_seen, last_seen) "
            "VALUES (?, ?, 0, ?, ?) ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, "
            "language = coalesce(excluded.language, listeners.language)",
            [listener_id, language, stamp, stamp])


def language_of(db: sqlite_utils.Database, listener_id: str) -> str | None:
    """The language a listener chose last, or None for a newcomer."""
    row = db.execute("SELECT language FROM listeners WHERE id = ?", [listener_id]).fetchone()
    return row[0] if row else None


def set_alerts(db: sqlite_utils.Database, listener_id: str, on: bool) -> None:
    """Opt a listener in to (or out of) calls announcing new lessons."""
    stamp = store.now()
    with store.write(db):
        db.conn.execute(
            "INSERT INTO listeners (id, alerts, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET alerts = excluded.alerts", [listener_id, int(on), stamp,
                                                                        stamp])


def alerts_on(db: sqlite_utils.Database, listener_id: str) -> bool:
    row = db.execute("SELECT alerts FROM listeners WHERE id = ?", [listener_id]).fetchone()
    return bool(row and row[0])


def progress(db: sqlite_utils.Database, listener_id: str) -> dict[int, int]:
    """Where a listener stopped in each unfinished lesson: lesson id -> position in ms."""
    return dict(db.execute("SELECT lesson_id, position_ms FROM progress WHERE listener = ?",
                           [listener_id]).fetchall())


def save_progress(db: sqlite_utils.Database, listener_id: str, lesson_id: int, language: str,
                  position_ms: int) -> None:
    """Remember where a listener stopped in a lesson (replacing the previous position)."""
    with store.write(db):
        db.conn.execute(
            "INSERT OR REPLACE INTO progress (listener, lesson_id, language, position_ms, updated_at) "
            "VALUES (?, ?, ?, ?, ?)", [listener_id, lesson_id, language, max(0, int(position_ms)),
                                       store.now()])


def clear_progress(db: sqlite_utils.Database, listener_id: str, lesson_id: int) -> None:
    """Forget a listener's position in a lesson (she finished it)."""
    with store.write(db):
        db.conn.execute("DELETE FROM progress WHERE listener = ? AND lesson_id = ?",
                        [listener_id, lesson_id])


def forget(db: sqlite_utils.Database, listener_id: str) -> int:
    """Erase a listener on request: her row and progress go, her listens stay, anonymous.

    Statistics keep the listens and lose her from the unique-listener counts. Returns how many of
    her listen events were made anonymous. Recorded messages are not touched here.
    """
    with store.write(db):
        conn = db.conn
        heard = conn.execute("UPDATE listen_events SET listener = NULL WHERE listener = ?",
                             [listener_id]).rowcount
        conn.execute("UPDATE nav_events SET listener = NULL WHERE listener = ?", [listener_id])
        conn.execute("DELETE FROM progress WHERE listener = ?", [listener_id])
        conn.execute("DELETE FROM listeners WHERE id = ?", [listener_id])
        row = conn.execute("SELECT n FROM stats_listener_ids WHERE listener = ?",
                           [listener_id]).fetchone()
        if row:
            for table in ("stats_lesson_listener_day", "stats_listener_day"):
                conn.execute(f"DELETE FROM {table} WHERE listener = ?", [row[0]])
            conn.execute("DELETE FROM stats_listener_ids WHERE n = ?", [row[0]])
    log.info("listener forgotten; %d listen events made anonymous", heard)
    return heard
