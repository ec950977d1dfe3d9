"""Lesson recordings as leaders manage them: upload with the speaker's consent, history, restore.

A replaced recording is never lost: the store's trigger copies it to ``recording_history`` (its media
files stay under their content hash), and ``restore`` makes it current again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from audio_lessons import catalog, media, store
from audio_lessons.config import Settings
from audio_lessons.errors import CatalogError

log = logging.getLogger(__name__)

MAX_SPEAKER = 80


@dataclass(frozen=True)
class Version:
    """A recording a lesson had in one language (current or replaced)."""

    language: str
    media: str
    speaker: str
    synthetic: bool
    duration_ms: int
    created_at: str
    consent_at: str | None
    added_by: str | None
    replaced_at: str | None  # None: the current one


def add(db: sqlite_utils.Database, settings: Settings, lesson_id: int, language: str,
        upload: Path, original_name: str | None, *, speaker: str, consent: bool,
        user: str, prepare: Callable[..., media.Prepared] = media.prepare) -> media.Prepared:
    """Prepare an upload and make it the lesson's recording in ``language``.

    A leader's voice is only used with her consent; the credit and who added it are kept.
    ``prepare`` is ``media.prepare`` or a stand-in with its signature (the panel's child process).
    """
    speaker = " ".join((speaker or "").split())
    if not speaker:
        raise CatalogError("Escriba el nombre de la persona que habla en la grabación.")
    if len(speaker) > MAX_SPEAKER:
        raise CatalogError(f"El nombre es demasiado largo (máximo {MAX_SPEAKER} caracteres).")
    if not consent:
        raise CatalogError("Marque que la persona que habla dio su permiso para publicar su voz.")
    catalog.get_lesson(db, lesson_id)
    catalog.check_language(db, language)
    prepared = prepare(upload, settings.media_dir, settings.media, original_name)
    media.register(db, prepared, original_name)
    catalog.set_recording(db, lesson_id, language, prepared.hash, speaker=speaker)
    _mark(db, lesson_id, language, store.now(), user)
    log.info("lesson %d: %s recording %s by %s", lesson_id, language, prepared.hash, user)
    return prepared


def _mark(db: sqlite_utils.Database, lesson_id: int, language: str, consent_at: str | None,
          user: str | None) -> None:
    with store.write(db):
        db.execute("UPDATE recordings SET consent_at = ?, added_by = ? "
                   "WHERE lesson_id = ? AND language = ?", [consent_at, user, lesson_id, language])


def history(db: sqlite_utils.Database, lesson_id: int) -> list[Version]:
    """The current recordings then the replaced ones, newest first, per language."""
    columns = ("r.language, r.media, r.speaker, r.synthetic, coalesce(m.duration_ms, 0), "
               "r.created_at, r.consent_at, r.added_by")
    current = db.execute(f"SELECT {columns}, NULL FROM recordings r LEFT JOIN media m "
                         f"ON m.hash = r.media WHERE r.lesson_id = ? ORDER BY r.language",
                         [lesson_id])
    old = db.execute(f"SELECT {columns}, r.replaced_at FROM recording_history r LEFT JOIN media m "
                     f"ON m.hash = r.media WHERE r.lesson_id = ? "
                     f"ORDER BY r.language, r.replaced_at DESC, r.rowid DESC", [lesson_id])
    return [Version(r[0], r[1], r[2] or "", bool(r[3]), int(r[4]), r[5] or "", r[6], r[7], r[8])
            for r in [*current, *old]]


def restore(db: sqlite_utils.Database, settings: Settings, lesson_id: int, language: str,
            media_hash: str, user: str) -> None:
    """Make an earlier recording current again (the one it replaces goes to the history)."""
    found = [v for v in history(db, lesson_id)
             if v.language == language and v.media == media_hash and v.replaced_at]
    if not found:
        raise CatalogError("Esa grabación anterior no existe.")
    if not media.variant_path(settings.media_dir, media_hash, "phone").exists():
        raise CatalogError("Los archivos de esa grabación ya no están en la carpeta de audio.")
    old = found[0]
    row = db.execute("SELECT script FROM recording_history WHERE lesson_id = ? AND language = ? "
                     "AND media = ?", [lesson_id, language, media_hash]).fetchone()
    catalog.set_recording(db, lesson_id, language, media_hash, speaker=old.speaker,
                          synthetic=old.synthetic, script=(row[0] if row else "") or "")
    _mark(db, lesson_id, language, old.consent_at, user)
    log.info("lesson %d: %s recording %s restored by %s", lesson_id, language, media_hash, user)
