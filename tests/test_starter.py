"""The starter pack: its content, and installing it on a real store with real synthesis, twice."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest

from audio_lessons import catalog, keymap, media, menu, starter, store
from audio_lessons.config import Settings
from audio_lessons.synth import FakeSynthesizer, Pyttsx3Synthesizer
from tests.conftest import require_program

MENU_PROMPTS = [*menu.PROMPT_NAMES, *(f"digit:{d}" for d in range(10)), "language:es",
                "language:qu"]
# Quechua texts nobody here could write with confidence: the engine plays the Spanish ones.
NO_QUECHUA_YET = ["alerts_offer", "alerts_on", "did_you_mean", "para", "quiz_right", "quiz_wrong",
                  "record_intro", "voice_hint", "yes_no"]
COMMAND_WORDS = {"repetir", "siguiente", "atrás", "pausa", "menú", "ayuda", "mensaje", "sí", "no"}
TOPIC_WORDS = ["protección", "terreno", "herramienta", "sílice", "mercurio", "sol", "seguridad"]


# ---- content -------------------------------------------------------------------------------------

def test_seven_lessons_on_keys_1_to_7_in_the_guide_order() -> None:
    lessons = starter.load_lessons()
    assert [le.key for le in lessons] == [str(k) for k in range(1, 8)]
    assert len({le.slug for le in lessons}) == 7
    for lesson, word in zip(lessons, TOPIC_WORDS, strict=True):
        assert word in lesson.topic.lower(), (lesson.slug, word)
        assert 1 <= len(lesson.title.split()) <= 5


def test_scripts_are_one_to_two_minutes_with_intro_quiz_and_closing() -> None:
    for lesson in starter.load_lessons():
        words = lesson.script.split()
        assert 180 <= len(words) <= 260, (lesson.slug, len(words))
        assert lesson.script.startswith("Hola, compañera.")
        for part in ("dos preguntas", "Primera pregunta", "Segunda pregunta", "La respuesta es"):
            assert part in lesson.script, (lesson.slug, part)
        assert lesson.script.endswith("Hasta la próxima lección.")


def test_keywords_are_distinct_and_not_commands_or_digits() -> None:
    spoken = [w for le in starter.load_lessons() for w in le.keywords]
    assert all(1 <= len(le.keywords) <= 3 for le in starter.load_lessons())
    assert len(spoken) == len(set(spoken))
    reserved = COMMAND_WORDS | set(keymap.DIGIT_WORDS) | set(keymap.LANGUAGE_WORDS)
    assert not reserved & set(spoken)
    assert "sol" not in spoken  # the Spanish recogniser hears "sol" as "dos" (shared/models)


def test_every_menu_prompt_has_spanish_and_quechua_needs_review() -> None:
    raw = tomllib.loads(starter.PROMPTS_FILE.read_text(encoding="utf-8"))
    assert sorted(raw) == sorted(MENU_PROMPTS)
    assert all(raw[name]["es"].strip() for name in MENU_PROMPTS)
    missing_qu = sorted(name for name in MENU_PROMPTS if not raw[name]["qu"].strip())
    assert missing_qu == NO_QUECHUA_YET
    for code in ("es", "qu"):  # she has not chosen a language yet: the same words under both
        assert raw[f"language:{code}"]["es"] == raw[f"language:{code}"]["qu"]
    assert "NEED REVIEW BY A NATIVE SPEAKER" in starter.PROMPTS_FILE.read_text(encoding="utf-8")[:200]
    texts = starter.load_prompts()
    assert texts[("title:polvo", "es")] == "el polvo"
    assert ("title:terreno", "qu") not in texts


# ---- install on a real store ----------------------------------------------------------------------

class CountingSynthesizer:
    """Wraps a synthesiser and records every text it was asked for."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.asked: list[tuple[str, str]] = []

    def render(self, text: str, language: str) -> Path:
        return self.render_many([(text, language)])[0]

    def render_many(self, items):
        self.asked += list(items)
        return self.inner.render_many(items)


def files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file()}


def expected_prompts() -> int:
    return len(starter.load_prompts())


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    require_program("ffmpeg")
    return Settings(data_dir=tmp_path / "data")


@pytest.mark.slow
def test_install_twice_with_real_speech(settings: Settings) -> None:
    require_program("espeak-ng")
    db = store.connect(settings.db_path)
    tts = CountingSynthesizer(Pyttsx3Synthesizer(settings.voice, settings.cache_dir))
    seen = []
    started = time.monotonic()
    first = starter.install(db, settings, tts, progress=lambda *a: seen.append(a))
    elapsed = time.monotonic() - started
    print(f"starter install: {elapsed:.1f} s for {len(tts.asked)} texts")
    assert first.lessons_added == 7 and first.prompts_added == expected_prompts()
    assert seen[-1][0] == seen[-1][1] > 70  # distinct files: "language" is one text in es and qu
    assert elapsed < 90

    rows = list(db.query(
        "select l.key, l.slug, r.synthetic, r.speaker, r.script, m.duration_ms, m.hash "
        "from lessons l join recordings r on r.lesson_id = l.id and r.language = 'es' "
        "join media m on m.hash = r.media order by l.key"))
    assert [r["key"] for r in rows] == [str(k) for k in range(1, 8)]
    for row in rows:
        assert row["synthetic"] == 1 and row["speaker"] == starter.SPEAKER and row["script"]
        assert 60_000 <= row["duration_ms"] <= 120_000, row
        assert (settings.media_dir / f"{row['hash']}.phone.wav").exists()
    with_media = {(r["name"], r["language"]) for r in db.query(
        "select name, language from prompts where media is not null and synthetic = 1")}
    for name in MENU_PROMPTS + [f"title:{slug}" for slug in (r["slug"] for r in rows)]:
        assert (name, "es") in with_media, name
    assert ("digit:4", "qu") in with_media and ("para", "qu") not in with_media
    lesson = catalog.get_lesson(db, "polvo")
    assert lesson is not None

    media_before, cache_before = files(settings.media_dir), files(settings.cache_dir)
    tts.asked.clear()
    second = starter.install(db, settings, tts)
    assert (second.lessons_added, second.prompts_added, second.prompts_updated,
            second.recordings_added) == (0, 0, 0, 0)
    assert second.lessons_kept == 7 and second.prompts_kept == expected_prompts()
    assert tts.asked == []
    assert files(settings.media_dir) == media_before
    assert files(settings.cache_dir) == cache_before


def _leader_recording(db, settings: Settings, tmp_path: Path) -> str:
    wav = FakeSynthesizer(tmp_path / "leader", ms_per_char=90).render("Mi propia voz", "es")
    prepared = media.prepare(wav, settings.media_dir, settings.media, original_name="lideresa.m4a")
    media.register(db, prepared, "lideresa.m4a")
    return prepared.hash


@pytest.mark.slow
def test_a_leader_recording_is_never_overwritten(settings: Settings, tmp_path: Path) -> None:
    db = store.connect(settings.db_path)
    fake = FakeSynthesizer(settings.cache_dir, ms_per_char=5)
    starter.install(db, settings, fake)
    mine = _leader_recording(db, settings, tmp_path)
    catalog.set_prompt(db, "welcome", "es", mine, text="Bienvenidas, compañeras", synthetic=False)
    # A newer starter pack changes the wording of two prompts.
    changed = tmp_path / "prompts.toml"
    text = starter.PROMPTS_FILE.read_text(encoding="utf-8")
    text = text.replace("Hola, bienvenida a pallay.", "Hola, bienvenida otra vez a pallay.")
    text = text.replace('menu.es = "Menú principal.', 'menu.es = "Este es el menú principal.')
    changed.write_text(text, encoding="utf-8")
    fake.rendered.clear()

    summary = starter.install(db, settings, fake, prompts_file=changed)
    assert (summary.prompts_updated, summary.prompts_added, summary.lessons_added) == (1, 0, 0)
    assert [t for t, _ in fake.rendered] == ["Este es el menú principal. Elija una lección."]
    welcome = next(db.query("select media, synthetic from prompts where name = 'welcome' "
                            "and language = 'es'"))
    assert welcome == {"media": mine, "synthetic": 0}


@pytest.mark.slow
def test_keys_and_words_a_leader_already_uses_are_left_to_her(settings: Settings) -> None:
    db = store.connect(settings.db_path)
    catalog.add_lesson(db, slug="mi-leccion", title="mi lección", key="1", keywords=["polvo"])
    catalog.add_lesson(db, slug="otra", title="otra lección", key="3")
    summary = starter.install(db, settings, FakeSynthesizer(settings.cache_dir, ms_per_char=5))
    # Keys 1-7 minus the leader's two leave five for seven starter lessons.
    assert (summary.lessons_added, summary.lessons_skipped) == (5, 2)
    rows = {r["slug"]: r for r in db.query("select slug, key, keywords from lessons")}
    assert rows["mi-leccion"]["key"] == "1" and rows["otra"]["key"] == "3"
    assert rows["terreno"]["key"] == "2" and rows["polvo"]["key"] == "4"
    assert "equipo-y-cargas" not in rows and "descanso-y-herramientas" not in rows
    assert rows["polvo"]["keywords"] == '["mascarilla"]'
    assert sorted(r["key"] for r in rows.values()) == [str(k) for k in range(1, 8)]
