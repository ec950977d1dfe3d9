"""The admin panel under load: dashboard pages over 1,000,000 listen events, and during a big upload.

Fills a store as bench_stats does, starts the real panel (``pallay panel``, waitress) in a child
process, logs in over HTTP and times every statistics page and CSV export (median of 5, the server's
own time from its ``Server-Timing`` header, and the round trip). Then times the same pages while a
50 MB WAV upload is being processed, and reports the ratio to the idle time measured in this run
(target: within 2x), and the panel process's memory (resident now and at its peak).
Example: .venv/bin/python -m bench.bench_admin [listen_events]
"""

from __future__ import annotations

import http.cookiejar
import json
import math
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np

from audio_lessons import store, users
from bench import Figure, bench_stats

TARGET_MS = 300.0
UPLOAD_MB = 50
PASSWORD = "clave-del-banco-de-pruebas"
PAGES = {
    "dashboard, all time": "/estadisticas/",
    "dashboard, last 30 days": "/estadisticas/?desde=2026-12-02&hasta=2026-12-31",
    "dashboard, phone only": "/estadisticas/?canal=phone",
    **{f"csv {name}": f"/estadisticas/{name}.csv" for name in (
        "lecciones", "por-dia-canal", "por-dia-idioma", "recorrido", "por-hora", "por-eleccion",
        "equipos")},
    "lessons list": "/lecciones/",
    "menus": "/menus/",
}


class Client:
    """Just enough HTTP for a logged-in session: cookies, the CSRF token, timings."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def get(self, path: str) -> tuple[float, float, bytes]:
        """(server ms, round-trip ms, body)."""
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=600) as answer:
            body = answer.read()
            server = float(answer.headers["Server-Timing"].split("dur=")[1])
        return server, (time.perf_counter() - started) * 1000, body

    def log_in(self) -> None:
        page = self.get("/entrar")[2].decode()
        self.csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        form = f"csrf={self.csrf}&name=bench&password={PASSWORD}".encode()
        self.opener.open(self.base + "/entrar", data=form, timeout=60).read()
        page = self.get("/lecciones/")[2].decode()
        self.csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def upload(self, path: Path, lesson_id: int) -> tuple[float, str]:
        """POST a recording as the page's script does: (seconds until it answered, its message)."""
        boundary = secrets.token_hex(16)
        fields = {"csrf": self.csrf, "language": "es", "speaker": "Banco", "consent": "1"}
        head = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                        f"{v}\r\n".encode() for k, v in fields.items())
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; "
                 f"filename=\"{path.name}\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
        body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(
            f"{self.base}/lecciones/{lesson_id}/grabacion", data=body, headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "X-Requested-With": "fetch"})
        started = time.perf_counter()
        with self.opener.open(request, timeout=600) as answer:
            message = json.loads(answer.read())["message"]
        return time.perf_counter() - started, message


def _big_wav(path: Path, megabytes: int) -> Path:
    """A speech-like WAV (noise bursts shaped like syllables) of about ``megabytes``."""
    rate = 16_000
    seconds = megabytes * 1_000_000 / (2 * rate)
    t = np.arange(int(seconds * rate)) / rate
    envelope = (np.sin(2 * math.pi * 3 * t) > 0).astype(np.float32)
    rng = np.random.default_rng(3)
    samples = (rng.standard_normal(t.size).astype(np.float32) * 4000 * envelope).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    def kb(field: str) -> float:
        return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) / 1024
    return kb("VmRSS"), kb("VmHWM")


def _time_pages(client: Client, repeat: int = 5) -> dict[str, tuple[float, float]]:
    found = {}
    for name, path in PAGES.items():
        runs = [client.get(path)[:2] for _ in range(repeat)]
        found[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
    return found


def _start_panel(data: Path, port: int) -> subprocess.Popen:
    pallay = shutil.which("pallay", path=str(Path(sys.executable).parent)) or "pallay"
    child = subprocess.Popen([pallay, "--data", str(data), "panel", "--host", "127.0.0.1",
                              "--port", str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    for _ in range(200):  # bounded: 20 s for the child to listen
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return child
        except OSError:
            time.sleep(0.1)
    child.kill()
    raise RuntimeError("the panel did not start")


def main(total: int = 1_000_000) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="pallay-bench-admin-") as tmp:
        data = Path(tmp) / "data"
        db = store.connect(data / "pallay.db")
        listens, navs, seconds = bench_stats.generate(db, total)
        users.add(db, "bench", "admin", PASSWORD)
        db.conn.close()
        print(f"generated {listens:,} listen events and {navs:,} nav events in {seconds:.0f} s")
        port = _free_port()
        child = _start_panel(data, port)
        try:
            client = Client(f"http://127.0.0.1:{port}")
            client.log_in()
            _time_pages(client, repeat=1)  # warm the page cache, as a panel that has been up
            idle = _time_pages(client)
            memory_idle = _memory_mb(child.pid)
            wav = _big_wav(Path(tmp) / "grande.wav", UPLOAD_MB)
            uploader = Client(client.base)
            uploader.log_in()
            took: list[tuple[float, str]] = []
            thread = threading.Thread(target=lambda: took.append(uploader.upload(wav, 1)))
            thread.start()
            time.sleep(1.0)  # let the body arrive so the pages are timed while it is processed
            busy = _time_pages(client, repeat=5)
            still = thread.is_alive()
            thread.join()
            memory_after = _memory_mb(child.pid)
        finally:
            child.terminate()
            child.wait(timeout=20)
    print(f"\n{'page':28s}{'idle server':>12s}{'idle total':>12s}{'upload server':>15s}"
          f"{'ratio':>7s}   target")
    worst, worst_ratio = 0.0, 0.0
    for name in PAGES:
        ratio = busy[name][0] / max(idle[name][0], 0.1)
        worst = max(worst, idle[name][0])
        worst_ratio = max(worst_ratio, ratio)
        print(f"{name:28s}{idle[name][0]:9.1f} ms{idle[name][1]:9.1f} ms{busy[name][0]:12.1f} ms"
              f"{ratio:6.2f}x   {TARGET_MS:.0f} ms, 2x")
    print(f"\nslowest page idle: {worst:.1f} ms -> {'OK' if worst < TARGET_MS else 'OVER'} the "
          f"{TARGET_MS:.0f} ms target")
    print(f"worst ratio during the {UPLOAD_MB} MB upload: {worst_ratio:.2f}x -> "
          f"{'OK' if worst_ratio <= 2 else 'OVER'} 2x")
    state = "still processing" if still else "done"
    print(f"the upload took {took[0][0]:.1f} s ({state} when the last page was timed): "
          f"{took[0][1]}")
    print(f"panel memory: {memory_idle[0]:.0f} MB resident when idle, {memory_after[0]:.0f} MB "
          f"after the upload, {memory_after[1]:.0f} MB at its peak")
    return [Figure(f"slowest page idle, {listens:,} listens", f"{worst:.1f} ms",
                   f"< {TARGET_MS:.0f} ms", worst < TARGET_MS),
            Figure(f"worst page during a {UPLOAD_MB} MB upload / idle", f"{worst_ratio:.2f}x",
                   "<= 2x", worst_ratio <= 2),
            Figure("panel memory: idle / after the upload / peak",
                   f"{memory_idle[0]:.0f} / {memory_after[0]:.0f} / {memory_after[1]:.0f} MB")]


if __name__ == "__main__":
    main(*map(int, sys.argv[1:2]))  # python -m bench.bench_admin [EVENTS]
