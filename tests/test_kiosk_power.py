"""Pulling the plug: kill -9 the kiosk during playback and recording, many times; it comes back."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import wave

import pytest

from audio_lessons import catalog, store
from tests.kiosk_harness import KIOSK_ENV, clip

CYCLES = 8


class KioskProcess:
    """``python -m kiosk --keys keyboard`` with keys on its standard input and its log read."""

    def __init__(self, kiosk_data, card):
        env = {**os.environ, **card.env, **KIOSK_ENV, "PALLAY_DATA": str(kiosk_data)}
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk", "--keys", "keyboard"],
                                     stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_line("ready")

    def _read(self):
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace"))

    def wait_line(self, text, since=0, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines[since:]):
                return
            assert self.proc.poll() is None, "".join(self.lines[-20:])
            time.sleep(0.05)
        raise AssertionError(f"never logged {text!r}: {''.join(self.lines[-10:])}")

    def keys(self, *keys, gap=0.6):
        for key in keys:
            self.proc.stdin.write(key.encode())
            self.proc.stdin.flush()
            time.sleep(gap)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.mark.slow
def test_kill_minus_nine_during_playback_and_recording_leaves_a_working_kiosk(kiosk_data, sound_card):
    rng = random.Random(8)
    for cycle in range(CYCLES):
        kiosk = KioskProcess(kiosk_data, sound_card)
        mark = len(kiosk.lines)
        if cycle % 2 == 0:
            kiosk.keys("5", "1", "1")  # wake, Spanish, the first lesson
            kiosk.wait_line("lesson ", since=mark)
        else:
            kiosk.keys("5", "1", "8")  # wake, Spanish, leave a message
            kiosk.wait_line("recording a message", since=mark)
        time.sleep(rng.uniform(0, 2.5))
        kiosk.kill()

    kiosk = KioskProcess(kiosk_data, sound_card)  # after the last cut: it starts, and it plays
    db = store.connect(kiosk_data / "pallay.db")
    lesson = clip(kiosk_data, catalog.get_lesson(db, "casco").recordings["es"].media)
    start = sound_card.position
    kiosk.keys("5", "1", "1")
    sound_card.speaker.wait_for(lesson, since=start)
    kiosk.keys("*")
    kiosk.proc.send_signal(signal.SIGTERM)
    assert kiosk.proc.wait(20) == 0

    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    welcomes = db.execute("SELECT session, count(*) FROM nav_events WHERE step = 'welcome' "
                          "GROUP BY session").fetchall()
    assert len(welcomes) >= CYCLES // 2 and all(n == 1 for _, n in welcomes)  # none doubled
    starts = db.execute("SELECT count(*) FROM nav_events WHERE step = 'lesson_start'").fetchone()
    assert 1 <= db["listen_events"].count <= starts[0]
    assert db.execute("SELECT count(*) FROM listen_events WHERE completed = 1").fetchone()[0] >= 1
    assert not list((kiosk_data / "spool").glob("*.part"))  # interrupted recordings are gone
    paths = [row["path"] for row in db["messages"].rows]
    assert len(paths) == len(set(paths))
    for row in db["messages"].rows:  # every filed message is whole
        with wave.open(str(kiosk_data / "messages" / row["path"])) as wav:
            assert wav.getnframes() * 1000 // wav.getframerate() == row["duration_ms"]
