"""Lessons as leaders create and edit them in the panel: with their spoken title and quiz prompts.

The catalogue's rules hold (``catalog``); this adds what a lesson needs to be heard properly: a
synthetic ``title:<slug>`` prompt as soon as it exists (renamed: spoken again, unless a leader
recorded it), and a ``quiz:<slug>`` prompt when it gets a yes/no question.
"""

from __future__ import annotations

import logging

import sqlite_utils

from audio_lessons import catalog, prompts, store
from audio_lessons.config import Settings
from audio_lessons.errors import CatalogError
from audio_lessons.synth import Synthesizer

log = logging.getLogger(__name__)


def free_slug(db: sqlite_utils.Database, title: str) -> str:
    """A slug for ``title`` that no lesson has yet."""
    base = catalog.slugify(title)[:55]
    slug, n = base, 1
    while db.execute("SELECT 1 FROM lessons WHERE slug = ?", [slug]).fetchone():
        n += 1
        slug = f"{base}-{n}"
    return slug


def create(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer, *,
           title: str, topic: str = "", menu: str = catalog.ROOT_MENU, key: str | None = None,
           keywords=(), published: bool = False) -> int:
    """A new lesson (unpublished until it has a recording, by default) and its title prompt."""
    lesson_id = catalog.add_lesson(db, slug=free_slug(db, title), title=title, topic=topic,
                                   menu=menu, key=key or None, keywords=keywords,
                                   published=published)
    lesson = catalog.get_lesson(db, lesson_id)
    try:
        prompts.synthesise(db, settings, synthesizer, f"title:{lesson.slug}", "es", lesson.title)
    except Exception:
        catalog.delete_lesson(db, lesson_id)
        raise
    return lesson_id


def edit(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer,
         lesson_id: int, **fields) -> catalog.Lesson:
    """Change a lesson; a new title is spoken again in its synthetic title prompt."""
    before = catalog.get_lesson(db, lesson_id)
    if fields.get("published") and not before.recordings:
        raise CatalogError("Una lección sin grabación no se puede publicar: suba primero su audio.")
    after = catalog.update_lesson(db, lesson_id, **fields)
    if after.title != before.title:
        prompts.synthesise(db, settings, synthesizer, f"title:{after.slug}", "es", after.title,
                           keep_recorded=True)
    return after


def set_quiz(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer,
             lesson_id: int, question: str, answer: str | None) -> None:
    """Give a lesson a yes/no question (spoken by ``quiz:<slug>``), or remove it (empty question)."""
    lesson = catalog.get_lesson(db, lesson_id)
    question = " ".join((question or "").split())
    if not question:
        catalog.set_quiz(db, lesson_id, None)
        return
    if answer not in ("1", "2"):
        raise CatalogError("Elija la respuesta correcta: sí (1) o no (2).")
    if len(question) > 400:
        raise CatalogError("La pregunta es demasiado larga (máximo 400 caracteres).")
    prompts.synthesise(db, settings, synthesizer, f"quiz:{lesson.slug}", "es", question,
                       keep_recorded=_same_text(db, lesson.slug, question))
    catalog.set_quiz(db, lesson_id, answer)


def _same_text(db: sqlite_utils.Database, slug: str, question: str) -> bool:
    row = db.execute("SELECT text FROM prompts WHERE name = ? AND language = 'es'",
                     [f"quiz:{slug}"]).fetchone()
    return bool(row and row[0] == question)


def quiz_question(db: sqlite_utils.Database, slug: str) -> str:
    row = db.execute("SELECT text FROM prompts WHERE name = ? AND language = 'es'",
                     [f"quiz:{slug}"]).fetchone()
    return row[0] if row else ""


def remove(db: sqlite_utils.Database, lesson_id: int) -> None:
    """Delete a lesson and its title and quiz prompts (its listening history stays)."""
    lesson = catalog.get_lesson(db, lesson_id)
    catalog.delete_lesson(db, lesson_id)
    with store.write(db):
        db.execute("DELETE FROM prompts WHERE name IN (?, ?)",
                   [f"title:{lesson.slug}", f"quiz:{lesson.slug}"])


def check_keywords(db: sqlite_utils.Database, lesson_id: int, recognizer) -> list:
    """How well ``recognizer`` hears each of a lesson's spoken keywords, and what it confuses
    them with, against the words callers may say in the same menu (``speech.keywords``)."""
    from audio_lessons import keymap
    from audio_lessons.speech import keywords

    lesson = catalog.get_lesson(db, lesson_id)
    neighbours = [w for le in catalog.list_lessons(db) if le.menu == lesson.menu
                  and le.id != lesson.id for w in le.keywords]
    in_use = [*keymap.MENU_WORDS, *keymap.DIGIT_WORDS, *neighbours]
    return [keywords.check_keyword(word, recognizer, in_use) for word in lesson.keywords]
