"""What a power cut may leave behind, set right when the kiosk starts.

SQLite in WAL mode never corrupts on a cut; the kiosk's connection also uses
``synchronous=FULL`` (every commit on disk before it returns: a kiosk writes a few events a
minute, so the cost is nothing), which leaves at most the events still in the session writer's
queue - well under a second - to lose. Message recordings are written as ``.part`` files and
renamed when complete: a ``.part`` is an interrupted recording and is removed; a complete
recording that was never filed (the cut came while she was reviewing it) is filed now, since the
phone line too keeps a message when the caller leaves during the review.
"""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import sqlite_utils

from audio_lessons import store
from audio_lessons.actions import SaveMessage
from audio_lessons.config import Settings
from audio_lessons.menu import MIN_MESSAGE_MS
from audio_lessons.session import SessionLog

log = logging.getLogger(__name__)
KIOSK_RECORDINGS = "message-kiosk-*.wav"


def open_store(settings: Settings) -> sqlite_utils.Database:
    """The store, checked, with every commit made durable."""
    db = store.connect(settings.db_path)
    db.execute("PRAGMA synchronous = FULL")
    verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    if verdict != "ok":
        log.error("the database %s failed its check (%s): restore a backup", settings.db_path,
                  verdict)
    return db


def tidy_spool(settings: Settings, db: sqlite_utils.Database) -> tuple[int, int]:
    """Remove interrupted recordings and file complete ones; returns (removed, filed)."""
    spool = settings.data_dir / "spool"
    removed = filed = 0
    for part in sorted(spool.glob(KIOSK_RECORDINGS + ".part")):
        part.unlink(missing_ok=True)
        removed += 1
    session = None
    for path in sorted(spool.glob(KIOSK_RECORDINGS)):
        duration = _duration_ms(path)
        if duration < MIN_MESSAGE_MS:
            path.unlink(missing_ok=True)
            removed += 1
            continue
        session = session or SessionLog(db, settings.messages_dir, channel="kiosk",
                                        device=settings.kiosk.device, listener=None)
        session.apply(SaveMessage(str(path), duration, settings.menu.default_language))
        filed += 1
    if removed or filed:
        log.info("after the last stop: %d interrupted recordings removed, %d messages filed",
                 removed, filed)
    return removed, filed


def _duration_ms(path: Path) -> int:
    try:
        with wave.open(str(path)) as wav:
            return wav.getnframes() * 1000 // wav.getframerate()
    except (wave.Error, EOFError, OSError):
        return 0
