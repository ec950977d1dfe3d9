"""Prompts as leaders manage them: hear each, replace it with a recording, or speak it again.

A prompt is a named piece of speech per language (``catalog.set_prompt``); the synthetic ones are
placeholders that wait for a leader's voice. ``placeholders`` lists everything still synthetic,
prompts and lesson recordings alike.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from audio_lessons import catalog, media
from audio_lessons.config import MediaSettings, Settings
from audio_lessons.errors import CatalogError
from audio_lessons.synth import Synthesizer

log = logging.getLogger(__name__)

PROMPT_MIN_SECONDS = 0.2  # as the starter pack: digits last well under the lesson minimum


@dataclass(frozen=True)
class Prompt:
    name: str
    language: str
    text: str
    media: str | None
    synthetic: bool
    duration_ms: int
    updated_at: str


@dataclass(frozen=True)
class Placeholder:
    """Something callers hear in a synthetic voice: a prompt or a lesson recording."""

    kind: str  # "prompt" or "lesson"
    name: str  # prompt name or lesson slug
    language: str
    text: str  # prompt text or lesson title
    lesson_id: int | None = None


def prompt_media_settings(settings: MediaSettings) -> MediaSettings:
    return dataclasses.replace(settings, min_seconds=min(settings.min_seconds, PROMPT_MIN_SECONDS))


def list_prompts(db: sqlite_utils.Database, synthetic_only: bool = False) -> list[Prompt]:
    where = "WHERE p.synthetic = 1" if synthetic_only else ""
    rows = db.execute(
        "SELECT p.name, p.language, p.text, p.media, p.synthetic, coalesce(m.duration_ms, 0), "
        f"p.updated_at FROM prompts p LEFT JOIN media m ON m.hash = p.media {where} "
        "ORDER BY p.name, p.language")
    return [Prompt(r[0], r[1], r[2] or "", r[3], bool(r[4]), int(r[5]), r[6] or "") for r in rows]


def get(db: sqlite_utils.Database, name: str, language: str) -> Prompt:
    for found in list_prompts(db):
        if found.name == name and found.language == language:
            return found
    raise CatalogError(f"No existe el aviso «{name}» en «{language}».")


def placeholders(db: sqlite_utils.Database) -> list[Placeholder]:
    """Every synthetic voice callers may still hear: lessons first, then prompts."""
    found = [Placeholder("lesson", le.slug, lang, le.title, le.id)
             for le in catalog.list_lessons(db) for lang, rec in sorted(le.recordings.items())
             if rec.synthetic]
    found += [Placeholder("prompt", p.name, p.language, p.text)
              for p in list_prompts(db, synthetic_only=True)]
    return found


def replace_with_recording(db: sqlite_utils.Database, settings: Settings, name: str,
                           language: str, upload: Path, original_name: str | None,
                           prepare: Callable[..., media.Prepared] = media.prepare) -> Prompt:
    """A leader's recording becomes the prompt (MediaError in Spanish if it is not usable audio)."""
    current = get(db, name, language)
    prepared = prepare(upload, settings.media_dir, prompt_media_settings(settings.media),
                             original_name)
    media.register(db, prepared, original_name)
    catalog.set_prompt(db, name, language, prepared.hash, text=current.text, synthetic=False)
    log.info("prompt %s/%s recorded (%s)", name, language, prepared.hash)
    return get(db, name, language)


def synthesise(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer, name: str,
               language: str, text: str, keep_recorded: bool = False) -> str:
    """Speak ``text`` as the prompt ``name`` in a synthetic voice (placeholder); returns the name.

    With ``keep_recorded`` a leader's recording of it stays as it is.
    """
    text = " ".join((text or "").split())
    if not text:
        raise CatalogError("El texto del aviso no puede estar vacío.")
    row = db.execute("SELECT synthetic FROM prompts WHERE name = ? AND language = ?",
                     [name, language]).fetchone()
    if keep_recorded and row and not row[0]:
        return name
    wav = synthesizer.render(text, language)
    prepared = media.prepare(wav, settings.media_dir, prompt_media_settings(settings.media),
                             f"{name.replace(':', '-')}.{language}.wav")
    media.register(db, prepared, wav.name)
    catalog.set_prompt(db, name, language, prepared.hash, text=text, synthetic=True)
    return name


def regenerate(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer,
               name: str, language: str, text: str | None = None) -> Prompt:
    """Put the synthetic placeholder back (from its text, or a corrected ``text``)."""
    current = get(db, name, language)
    synthesise(db, settings, synthesizer, name, language, text or current.text)
    return get(db, name, language)
