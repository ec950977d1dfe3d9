"""Shared by the sync tests and bench: a central server's data, an edge's data, a real WSGI server.

Run as a script it serves the sync blueprint with waitress (the server pallay runs in production)
and prints its port: ``python -m tests.sync_helpers DATA_DIR``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
from flask import Flask

from audio_lessons import catalog, config, edges, events, media, store, sync
from audio_lessons.config import Settings
from tests.conftest import require_program

REPO = Path(__file__).resolve().parent.parent


def settings_for(data_dir: Path, **sync_fields) -> Settings:
    """Settings of a data folder with no pallay.toml and no environment overrides."""
    base = config.load(data_dir, environ={})
    if not sync_fields:
        return base
    import dataclasses
    return dataclasses.replace(base, sync=dataclasses.replace(base.sync, **sync_fields))


def tone_wav(path: Path, seconds: float, freq: float, rate: int = 16000) -> Path:
    """A spoken-level tone with a syllable-like envelope (passes media's silence trimming)."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    samples = (0.3 * envelope * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def record(db, settings: Settings, lesson: str | int, freq: float, seconds: float = 2.0,
           language: str = "es") -> str:
    """Prepare a real recording (ffmpeg, loudness, variants) and make it the lesson's; its hash."""
    src = tone_wav(settings.data_dir / f"upload-{freq:.0f}.wav", seconds, freq)
    prepared = media.prepare(src, settings.media_dir, settings.media, src.name)
    media.register(db, prepared, src.name)
    catalog.set_recording(db, catalog.get_lesson(db, lesson).id, language, prepared.hash)
    src.unlink()
    return prepared.hash


def make_server(data_dir: Path, lessons: int = 3, seconds: float = 2.0,
                spare: int = 0) -> tuple[Settings, object]:
    """A central server's data folder: ``lessons`` published lessons with real media, a prompt,
    and ``spare`` more prepared recordings (``spares(db)``) to swap in as a leader's re-upload."""
    settings = settings_for(data_dir)
    db = sync.connect(settings.db_path)
    for n in range(1, lessons + 1):
        slug = f"leccion-{n}"
        catalog.add_lesson(db, slug=slug, title=f"lección {n}", keywords=(f"palabra{n}",))
        record(db, settings, slug, 200.0 + 40 * n, seconds)
    for n in range(spare):
        src = tone_wav(data_dir / "spare.wav", seconds, 700.0 + 30 * n)
        media.register(db, media.prepare(src, settings.media_dir, settings.media), src.name)
    src = tone_wav(data_dir / "welcome.wav", 1.0, 330.0)
    prepared = media.prepare(src, settings.media_dir, settings.media, src.name)
    media.register(db, prepared, src.name)
    catalog.set_prompt(db, "welcome", "es", prepared.hash, text="Bienvenida")
    return settings, db


def template(tmp_path_factory, name: str, **server) -> Path:
    """A server data folder made once (``make_server(**server)``) for a module's tests to copy."""
    require_program("ffmpeg")
    folder = tmp_path_factory.mktemp(name) / "server"
    _, db = make_server(folder, **server)
    db.conn.close()
    return folder


def copy_of(template_dir: Path, tmp_path: Path) -> Path:
    """A fresh copy of a template server folder for one test."""
    folder = tmp_path / "server"
    shutil.copytree(template_dir, folder)
    return folder


def spares(db) -> list[str]:
    """Prepared media hashes no lesson or prompt uses."""
    return [row[0] for row in db.execute(
        "SELECT hash FROM media WHERE hash NOT IN (SELECT media FROM recordings) "
        "AND hash NOT IN (SELECT media FROM prompts) ORDER BY hash")]


def add_edge(server_db, name: str = "sala-1", kind: str = "kiosk") -> str:
    return edges.add(server_db, name, kind)[1]


def make_edge(data_dir: Path, server_url: str = "", token: str = "", **fields) -> Settings:
    settings = settings_for(data_dir, server=server_url, **fields)
    data_dir.mkdir(parents=True, exist_ok=True)
    if token:
        (data_dir / "sync.token").write_text(token + "\n")
    sync.connect(settings.db_path).conn.close()
    return settings


def write_events(db, count: int, device: str = "sala-1", start: int = 0) -> list[str]:
    """``count`` listen and ``count`` navigation events as the kiosk writes them; their ids."""
    listens, navs = [], []
    for i in range(start, start + count):
        listens.append(events.ListenEvent(
            events.new_id(), "kiosk", device, f"{i % 50:032x}", 1 + i % 3, "qu", "button",
            f"2026-03-{1 + i % 28:02d}T10:{i % 60:02d}:00Z", 30.0, 60_000, 120_000))
        navs.append(events.NavEvent(events.new_id(), f"s{i // 4}", "kiosk", device, None,
                                    "lesson_start", str(1 + i % 3),
                                    f"2026-03-{1 + i % 28:02d}T10:{i % 60:02d}:00Z"))
    events.record_many(db, listens, navs)
    return [e.id for e in listens] + [e.id for e in navs]


def write_message(db, settings: Settings, seconds: float = 1.0) -> str:
    message_id = events.new_id()
    settings.messages_dir.mkdir(parents=True, exist_ok=True)
    tone_wav(settings.messages_dir / f"{message_id}.wav", seconds, 500.0, rate=8000)
    with store.write(db):
        db["messages"].insert({"id": message_id, "listener": None, "channel": "kiosk",
                               "device": "sala-1", "language": "qu",
                               "path": f"{message_id}.wav", "duration_ms": int(seconds * 1000),
                               "created_at": store.now(), "heard": 0})
    return message_id


def app_for(settings: Settings) -> Flask:
    """The admin panel as `pallay serve` builds it: the sync API is one of its blueprints."""
    from admin import create_app
    return create_app(settings)


class ThreadServer:
    """A real WSGI server (werkzeug's) in a thread of the test process."""

    def __init__(self, settings: Settings):
        from werkzeug.serving import make_server
        self.server = make_server("127.0.0.1", 0, app_for(settings), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


class WaitressProcess:
    """waitress in its own process, as pallay runs in production."""

    def __init__(self, data_dir: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.sync_helpers", str(data_dir)],
                                     cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"waitress did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line)}"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def kill(self) -> None:
        """kill -9: the server's power is cut mid-request."""
        self.proc.kill()
        self.proc.wait(10)


class CuttingProxy:
    """A TCP proxy that cuts the first ``cuts`` file downloads after ``after`` response bytes,
    and sends answers at ``rate`` bytes/s at most (a slow rural link) if given."""

    def __init__(self, target_port: int, cuts: int = 0, after: int = 0, rate: float = 0):
        self.target, self.cuts, self.after, self.rate = target_port, cuts, after, rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[bytes] = []
        self.cut = 0  # responses actually cut
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:  # the server is down: the kiosk sees a refused connection
            client.close()
            return
        head = client.recv(65536)
        with self._lock:
            self.requests.append(head)
            cut = b"/files/" in head.split(b"\r\n", 1)[0] and self.cuts > 0
            self.cuts -= cut
        upstream.sendall(head)
        threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
        self._pipe(upstream, client, self.after if cut else None, self.rate)

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None,
              rate: float = 0) -> None:
        sent = 0
        try:
            while data := src.recv(16384):
                if rate:
                    time.sleep(len(data) / rate)
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[:limit - sent])
                    with self._lock:
                        self.cut += 1
                    break  # the network goes away mid-file
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stop(self) -> None:
        self.listener.close()


def check_edge(settings: Settings, manifests: dict) -> str | None:
    """Assert the edge is whole: a sound database, and its content one manifest's entirely.

    ``manifests`` maps versions to manifests (None: the empty catalogue before any sync);
    returns the version found.
    """
    db = sync.connect(settings.db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        version = sync.current_version(db)
        assert version in manifests, f"unknown content version {version}"
        manifest = manifests[version]
        if manifest is not None:
            for table in sync.TABLES:
                incoming = manifest.tables[table]
                cols = ", ".join(incoming["columns"])
                mine = set(db.execute(f"SELECT {cols} FROM {table}").fetchall())
                assert mine == {tuple(r) for r in incoming["rows"]}, f"{table} is half-switched"
            for entry in manifest.wanted(settings.sync.variants):
                assert sync.sha256_of(settings.media_dir / entry.name) == entry.sha256
        return version
    finally:
        db.conn.close()


_TRACED = ("audio_lessons/sync.py", "audio_lessons/packs.py", "audio_lessons/outbox.py")


def _import_killed(kill_at: int, data_dir: str, pack: str) -> None:
    """Import a content pack, SIGKILLing this process at the ``kill_at``-th line of the sync code.

    Prints how many lines ran when it was not killed (to choose kill points).
    """
    import os
    import signal

    from audio_lessons import packs
    settings = settings_for(Path(data_dir))
    db = sync.connect(settings.db_path)
    ran = 0

    def local(frame, event, arg):
        nonlocal ran
        if event == "line":
            ran += 1
            if ran == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename.endswith(_TRACED) else None

    sys.settrace(tracer)
    packs.import_content(db, settings.data_dir, settings.media_dir, Path(pack),
                         settings.sync.variants, None)
    sys.settrace(None)
    print(ran, flush=True)


def _serve(data_dir: str) -> None:
    import waitress
    server = waitress.create_server(app_for(settings_for(Path(data_dir))), host="127.0.0.1",
                                    port=0, threads=4)
    print(server.effective_port, flush=True)
    server.run()


if __name__ == "__main__":
    if sys.argv[1] == "import-killed":
        _import_killed(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        _serve(sys.argv[1])
