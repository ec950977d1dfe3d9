"""Several processes writing to one SQLite file at once, as the phone line, kiosks and admin do.

Three event writers (one event per transaction, as the phone line writes) race a process that edits
the catalogue and imports a real espeak-ng recording. Nothing may fail with "database is locked" and
no event may be lost.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import time
from pathlib import Path

import pytest

from audio_lessons import catalog, events, stats, store
from audio_lessons.config import MediaSettings
from tests.conftest import require_program

WRITERS = 3
EVENTS_PER_WRITER = 1000


def _writer(db_path: str, worker: int, barrier, spans) -> None:
    db = store.connect(db_path)
    barrier.wait(timeout=60)
    started = time.time()
    for i in range(EVENTS_PER_WRITER):
        at = f"2026-06-{1 + i % 28:02d}T{10 + worker:02d}:00:00Z"
        events.record_listen(db, events.ListenEvent(
            f"listen-{worker}-{i}", "phone" if worker else "kiosk", f"device-{worker}",
            f"listener-{i % 17}", 1 + i % 5, "qu", "key", at, 30.0, 30_000 + 200 * i, 120_000))
        events.record_nav(db, events.NavEvent(
            f"nav-{worker}-{i}", f"session-{worker}-{i // 4}", "phone" if worker else "kiosk",
            f"device-{worker}", None, ("welcome", "menu", "lesson_start", "lesson_75")[i % 4], "",
            at))
    spans.put((started, time.time()))
    db.conn.close()


def _editor(db_path: str, wav: str, media_dir: str, barrier, spans) -> None:
    from audio_lessons import media

    db = store.connect(db_path)
    barrier.wait(timeout=60)
    started = time.time()
    for n in range(5):
        catalog.add_menu(db, f"tema-{n}", f"Tema {n}")
        for k in range(1, 4):
            catalog.add_lesson(db, slug=f"tema-{n}-{k}", title=f"Lección {n}.{k}", menu=f"tema-{n}",
                               keywords=[f"palabra{n}{k}"])
    prepared = media.prepare(Path(wav), Path(media_dir), MediaSettings(), "polvo.wav")
    media.register(db, prepared, "polvo.wav")
    catalog.set_recording(db, catalog.get_lesson(db, "tema-0-1").id, "es", prepared.hash,
                          synthetic=True, script="El polvo de la mina daña los pulmones.")
    spans.put((started, time.time()))
    db.conn.close()


@pytest.fixture
def spoken_wav(tmp_path) -> Path:
    require_program("espeak-ng")
    wav = tmp_path / "polvo.wav"
    subprocess.run(["espeak-ng", "-v", "roa/es-419", "-w", str(wav),
                    "El polvo de la mina daña los pulmones. Use siempre la mascarilla."],
                   check=True, capture_output=True, timeout=60)
    return wav


@pytest.mark.slow
def test_writers_and_catalogue_editor_at_once_lose_nothing(tmp_path, spoken_wav):
    db_path = tmp_path / "pallay.db"
    store.connect(db_path).conn.close()  # schema first, as `pallay init` does
    ctx = multiprocessing.get_context("spawn")
    barrier, spans = ctx.Barrier(WRITERS + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(db_path), w, barrier, spans))
             for w in range(WRITERS)]
    procs.append(ctx.Process(target=_editor, args=(str(db_path), str(spoken_wav),
                                                   str(tmp_path / "media"), barrier, spans)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * len(procs), "a process failed: see its traceback"
    windows = [spans.get(timeout=5) for _ in procs]
    assert max(start for start, _ in windows) < min(end for _, end in windows), "never ran at once"

    db = store.connect(db_path)
    expected = {f"listen-{w}-{i}" for w in range(WRITERS) for i in range(EVENTS_PER_WRITER)}
    assert {r[0] for r in db.execute("SELECT id FROM listen_events")} == expected
    assert db.execute("SELECT count(*) FROM nav_events").fetchone()[0] == WRITERS * EVENTS_PER_WRITER
    # the rollups the dashboard reads were kept in step by every writer
    assert stats.totals(db).listens == WRITERS * EVENTS_PER_WRITER
    assert stats.menu_funnel(db)[0].sessions == WRITERS * -(-EVENTS_PER_WRITER // 4)  # ceil
    assert len(catalog.list_lessons(db)) == 15 and len(catalog.view(db).menus) == 6
    heard = catalog.view(db).lessons
    assert [le.slug for le in heard.values()] == ["tema-0-1"]
    recording = next(iter(heard.values())).recording("es")
    assert 2_000 < recording.duration_ms < 10_000 and recording.synthetic
    db.conn.close()
