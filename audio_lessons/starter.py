"""The starter pack: seven safety lessons and every menu prompt, as synthetic placeholders.

A fresh pallay speaks at once: each starter text is synthesised, prepared as media and registered.
Leaders then replace the placeholders with their own voices; ``install`` never overwrites what a
leader recorded (``synthetic = 0``) and, run again, adds nothing and synthesises nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from audio_lessons import catalog, media
from audio_lessons.config import Settings
from audio_lessons.synth import Synthesizer

log = logging.getLogger(__name__)

STARTER_DIR = Path(__file__).resolve().parent / "starter"
LESSONS_FILE = STARTER_DIR / "lessons.toml"
PROMPTS_FILE = STARTER_DIR / "prompts.toml"
SPEAKER = "Voz sintética: reemplazar con la grabación de una lideresa"
# Digits and "para" last well under the upload minimum once their silence is trimmed.
PROMPT_MIN_SECONDS = 0.2

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class StarterLesson:
    slug: str
    key: str
    title: str
    topic: str
    keywords: tuple[str, ...]
    script: str
    title_qu: str = ""
    quiz: str = ""  # a yes/no question asked after the lesson is heard to the end
    quiz_answer: str | None = None  # "1" yes or "2" no


@dataclass(frozen=True)
class Summary:
    lessons_added: int = 0
    lessons_kept: int = 0
    lessons_skipped: int = 0  # no free key left in the main menu
    recordings_added: int = 0  # a synthetic recording given to a kept lesson that had none
    prompts_added: int = 0
    prompts_updated: int = 0  # synthetic prompts whose starter text changed
    prompts_kept: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Job:
    """One text to speak and where its media goes."""

    kind: str  # "lesson" or "prompt"
    name: str  # lesson slug or prompt name
    language: str
    text: str


def load_lessons(path: Path = LESSONS_FILE) -> list[StarterLesson]:
    """The starter lessons, in menu order."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [StarterLesson(slug=row["slug"], key=row["key"], title=row["title"], topic=row["topic"],
                          keywords=tuple(row["keywords"]), script=row["script"].strip(),
                          title_qu=row.get("title_qu", ""), quiz=row.get("quiz", ""),
                          quiz_answer=row.get("quiz_answer"))
            for row in data["lesson"]]


def load_prompts(path: Path = PROMPTS_FILE,
                 lessons: list[StarterLesson] | None = None) -> dict[tuple[str, str], str]:
    """(prompt name, language) -> text, with a ``title:<slug>`` per lesson; empty texts left out."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    texts = {(name, lang): text.strip() for name, by_lang in data.items()
             for lang, text in by_lang.items() if text.strip()}
    for lesson in load_lessons() if lessons is None else lessons:
        texts[(f"title:{lesson.slug}", "es")] = lesson.title
        if lesson.title_qu:
            texts[(f"title:{lesson.slug}", "qu")] = lesson.title_qu
        if lesson.quiz:
            texts[(f"quiz:{lesson.slug}", "es")] = lesson.quiz
    return texts


def install(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer,
            progress: Progress | None = None, *, lessons_file: Path = LESSONS_FILE,
            prompts_file: Path = PROMPTS_FILE) -> Summary:
    """Add the starter lessons and prompts that are missing, each with synthetic speech.

    ``progress(done, total, label)`` is called as texts are stored; other TOML files in the same
    format can replace the bundled pack.
    """
    started = time.monotonic()
    lessons, skipped = _place(db, load_lessons(lessons_file))
    jobs, counts = _plan(db, lessons, load_prompts(prompts_file, lessons))
    counts["lessons_skipped"] = skipped
    report = progress or (lambda done, total, label: None)
    report(0, len(jobs), "voz sintética")
    wavs = synthesizer.render_many([(job.text, job.language) for job in jobs])
    prepared = _prepare_all(settings, jobs, wavs, report)
    by_slug = {lesson.slug: lesson for lesson in lessons}
    for job, wav in zip(jobs, wavs, strict=True):
        media.register(db, prepared[job.kind, wav], _original_name(job))
        if job.kind == "prompt":
            counts[_store_prompt(db, job, prepared[job.kind, wav].hash)] += 1
        else:
            counts[_store_lesson(db, by_slug[job.name], prepared[job.kind, wav].hash)] += 1
    summary = Summary(**counts, seconds=round(time.monotonic() - started, 1))
    log.info("starter pack installed: %s", summary)
    return summary


def _plan(db: sqlite_utils.Database, lessons: list[StarterLesson],
          prompts: dict[tuple[str, str], str]) -> tuple[list[_Job], dict[str, int]]:
    """What is missing: lessons by slug, prompts by (name, language); count what is kept."""
    counts = {f.name: 0 for f in dataclasses.fields(Summary) if f.name != "seconds"}
    existing = {row["slug"]: row["id"] for row in db.query("select id, slug from lessons")}
    recorded = {row["lesson_id"] for row in
                db.query("select lesson_id from recordings where language = 'es'")}
    jobs = []
    for lesson in lessons:
        if lesson.slug not in existing or existing[lesson.slug] not in recorded:
            jobs.append(_Job("lesson", lesson.slug, "es", lesson.script))
        if lesson.slug in existing:
            counts["lessons_kept"] += 1
    for (name, language), text in prompts.items():
        current = _prompt_row(db, name, language)
        if current is None or (current["synthetic"] and current["text"] != text):
            jobs.append(_Job("prompt", name, language, text))
        else:
            counts["prompts_kept"] += 1
    return jobs, counts


def _prompt_row(db: sqlite_utils.Database, name: str, language: str) -> dict | None:
    rows = list(db.query("select text, synthetic from prompts where name = ? and language = ?"
                         " and media is not null", [name, language]))
    return rows[0] if rows else None


def _prepare_all(settings: Settings, jobs: list[_Job], wavs: list[Path],
                 report: Progress) -> dict[tuple[str, Path], media.Prepared]:
    """Prepare every distinct synthesised file as media, a few at a time.

    Preparing (ffprobe, ffmpeg, loudness) costs about 0.3 s a file and synthesis 0.03 s, so this is
    where the time goes; it runs in child processes, so threads use every core.
    """
    prompt_settings = dataclasses.replace(
        settings.media, min_seconds=min(settings.media.min_seconds, PROMPT_MIN_SECONDS))
    todo = {(job.kind, wav): job for job, wav in zip(jobs, wavs, strict=True)}
    done: dict[tuple[str, Path], media.Prepared] = {}
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        futures = {pool.submit(media.prepare, wav, settings.media_dir,
                               prompt_settings if kind == "prompt" else settings.media,
                               original_name=_original_name(job)): (kind, wav)
                   for (kind, wav), job in todo.items()}
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            report(len(done), len(todo), todo[futures[future]].name)
    return done


def _original_name(job: _Job) -> str:
    return f"{job.name.replace(':', '-')}.{job.language}.wav"


def _store_prompt(db: sqlite_utils.Database, job: _Job, media_hash: str) -> str:
    # Checked again just before writing: a leader may have recorded this prompt meanwhile.
    current = _prompt_row(db, job.name, job.language)
    if current is not None and not current["synthetic"]:
        log.info("prompt %s/%s was recorded by a leader meanwhile; kept", job.name, job.language)
        return "prompts_kept"
    catalog.set_prompt(db, job.name, job.language, media_hash, text=job.text, synthetic=True)
    return "prompts_added" if current is None else "prompts_updated"


def _store_lesson(db: sqlite_utils.Database, lesson: StarterLesson, media_hash: str) -> str:
    rows = list(db.query("select id from lessons where slug = ?", [lesson.slug]))
    if rows:  # an earlier install stopped before its recording was stored
        lesson_id, counted = rows[0]["id"], "recordings_added"
    else:
        lesson_id = catalog.add_lesson(db, slug=lesson.slug, title=lesson.title, topic=lesson.topic,
                                       menu=catalog.ROOT_MENU, key=lesson.key,
                                       keywords=lesson.keywords)
        catalog.set_quiz(db, lesson_id, lesson.quiz_answer if lesson.quiz else None)
        counted = "lessons_added"
    catalog.set_recording(db, lesson_id, "es", media_hash, speaker=SPEAKER, synthetic=True,
                          script=lesson.script)
    return counted


def _place(db: sqlite_utils.Database,
           lessons: list[StarterLesson]) -> tuple[list[StarterLesson], int]:
    """Fit new starter lessons around what leaders made: another free key if theirs is taken
    (skipped if the main menu is full), and none of the spoken words another lesson already has."""
    existing = {row["slug"] for row in db.query("select slug from lessons")}
    taken = {row["key"] for row in db.query(
        "select key from lessons where menu = :m and key is not null union "
        "select key from menus where parent = :m and key is not null", {"m": catalog.ROOT_MENU})}
    words_used = {w for row in db.query("select keywords from lessons")
                  for w in json.loads(row["keywords"] or "[]")}
    wanted = {le.key for le in lessons if le.slug not in existing}
    spare = [str(k) for k in range(1, catalog.MAX_ITEMS + 1) if str(k) not in taken
             and str(k) not in wanted and str(k) not in catalog.RESERVED_ROOT_KEYS]
    placed, skipped = [], 0
    for lesson in lessons:
        if lesson.slug in existing:
            placed.append(lesson)
            continue
        key = lesson.key
        if key in taken:
            if not spare:
                log.warning("main menu full: starter lesson %s not added", lesson.slug)
                skipped += 1
                continue
            key = spare.pop(0)
            log.warning("key %s is taken: starter lesson %s goes on key %s", lesson.key,
                        lesson.slug, key)
        taken.add(key)
        words = tuple(w for w in lesson.keywords if w not in words_used)
        if words != lesson.keywords:
            log.warning("starter lesson %s: spoken words %s already lead elsewhere; left out",
                        lesson.slug, sorted(set(lesson.keywords) - set(words)))
        placed.append(dataclasses.replace(lesson, key=key, keywords=words))
    return placed, skipped
