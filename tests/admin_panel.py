"""Shared set-up for the admin panel tests: a real store and media folder, staff, a few lessons."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from audio_lessons import catalog, config, media, store, users
from audio_lessons.synth import FakeSynthesizer

PASSWORD = "una-clave-larga"
STAFF = {"ana": "admin", "eva": "editor", "vero": "viewer"}


def build(data: Path, lessons: int = 3) -> config.Settings:
    """A data folder with staff, ``lessons`` lessons on keys 1.. of the main menu, and prompts."""
    settings = config.load(data, environ={})
    db = store.connect(settings.db_path)
    synth = FakeSynthesizer(settings.cache_dir)
    for name, role in STAFF.items():
        users.add(db, name, role, PASSWORD)
    for n in range(1, lessons + 1):
        lesson_id = catalog.add_lesson(db, slug=f"leccion-{n}", title=f"Lección {n}",
                                       key=str(n), keywords=[f"palabra{n}"])
        wav = synth.render(f"Texto de la lección número {n}, para escuchar.", "es")
        prepared = media.prepare(wav, settings.media_dir, settings.media, f"l{n}.wav")
        media.register(db, prepared, f"l{n}.wav")
        catalog.set_recording(db, lesson_id, "es", prepared.hash, speaker="voz", synthetic=True)
        _prompt(db, settings, synth, f"title:leccion-{n}", f"Lección {n}")
    for name, text in (("menu", "Menú principal."), ("message_option", "Para dejar un mensaje."),
                       ("language_option", "Para cambiar de idioma."),
                       ("welcome", "Bienvenida a pallay."), ("language", "Para español, uno.")):
        _prompt(db, settings, synth, name, text)
    db.conn.close()
    return settings


def _prompt(db, settings, synth, name: str, text: str) -> None:
    from audio_lessons import prompts
    prompts.synthesise(db, settings, synth, name, "es", text)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client, name: str, password: str = PASSWORD):
    token = csrf(client.get("/entrar").text)
    return client.post("/entrar", data={"csrf": token, "name": name, "password": password})


def token(client) -> str:
    """The logged-in session's CSRF token."""
    with client.session_transaction() as session:
        return session["csrf"]


def speech_file(path: Path, text: str = "Hola compañeras, cuidemos la salud.",
                codec: list[str] | None = None) -> Path:
    """Real speech by espeak-ng, encoded by ffmpeg (OGG/Opus like a WhatsApp note by default)."""
    wav = path.with_suffix(".src.wav")
    subprocess.run(["espeak-ng", "-v", "roa/es-419", "-w", str(wav), text], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav),
                    *(codec or ["-c:a", "libopus", "-f", "ogg"]), str(path)], check=True)
    return path
