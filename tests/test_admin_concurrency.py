"""The panel keeps serving while the phone line writes: a writer process (the line's way of storing
listen events, ``BEGIN IMMEDIATE``) runs flat out while a logged-in browser reads the dashboard and
changes a lesson over HTTP (waitress, real sockets)."""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
import urllib.request
from http.cookiejar import CookieJar

from admin import create_app
from audio_lessons import events, store
from audio_lessons.synth import FakeSynthesizer
from tests.admin_panel import PASSWORD, build
from tests.conftest import require_program

MAX_WRITES = 20_000  # bounded even if the panel side hangs
PAGES = 10


def _phone_line(db_path: str, started, stop, written) -> None:
    db = store.connect(db_path)
    started.set()
    while not stop.is_set() and written.value < MAX_WRITES:
        n = written.value
        events.record_listen(db, events.ListenEvent(
            events.new_id(), "phone", "line-1", f"{n % 50:032d}", 1 + n % 2, "es", "key",
            store.now(), 10.0, 10_000, 60_000))
        written.value = n + 1


def test_the_panel_answers_while_the_phone_line_writes(tmp_path):
    require_program("ffmpeg")
    import waitress  # a dependency of pallay: missing means a broken install, not a skip
    settings = build(tmp_path / "data", lessons=2)
    app = create_app(settings, synthesizer=FakeSynthesizer(settings.cache_dir))
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def token(path: str) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', opener.open(base + path).read().decode()
                         ).group(1)

    opener.open(base + "/entrar", data=f"csrf={token('/entrar')}&name=eva&password={PASSWORD}"
                .encode()).read()
    ctx = multiprocessing.get_context("spawn")
    started, stop, written = ctx.Event(), ctx.Event(), ctx.Value("i", 0)
    writer = ctx.Process(target=_phone_line, args=(str(settings.db_path), started, stop, written))
    writer.start()
    try:
        assert started.wait(30)
        slowest, pages = 0.0, 0
        while pages < PAGES and writer.is_alive():
            began = time.perf_counter()
            assert opener.open(base + "/estadisticas/").status == 200
            form = f"csrf={token('/lecciones/1')}&title=Lecci%C3%B3n+{pages}&published=1"
            assert opener.open(base + "/lecciones/1", data=form.encode()).status == 200
            slowest = max(slowest, time.perf_counter() - began)
            pages += 1
        during = written.value
        stop.set()
        writer.join(60)
    finally:
        server.close()
        if writer.is_alive():
            writer.kill()
    assert writer.exitcode == 0 and pages == PAGES  # no "database is locked" on either side
    assert 100 < during < MAX_WRITES, during  # the line really wrote all along
    assert slowest < 5.0, f"a page took {slowest:.1f} s while the line wrote"
    db = store.connect(settings.db_path)
    assert db.execute("SELECT count(*) FROM listen_events").fetchone()[0] == written.value
    assert db.execute("SELECT title FROM lessons WHERE id = 1").fetchone()[0] == \
        f"Lección {pages - 1}"
