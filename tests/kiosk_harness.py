"""A sound card for kiosk tests: real PortAudio and ALSA, no hardware.

ALSA's ``file`` plugin is the default device. Its playback side writes raw samples into a FIFO
that ``Speaker`` reads at real time (22 050 samples a second), so PortAudio is paced as by a real
DAC and the test keeps every sample that "left the speaker". Its capture side reads a FIFO that
``Mic`` writes at real time: a noise floor, and what a test asks it to say.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import numpy as np

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python 3.10+ has the name on Linux; be explicit)
OUT_RATE, IN_RATE = 22050, 16000

ASOUNDRC = """
pcm.nul {{ type null }}
pcm.speaker {{ type file slave.pcm "nul" file "{speaker}" format "raw" }}
pcm.microphone {{ type file slave.pcm "nul" file "/dev/null" infile "{mic}" format "raw" }}
pcm.!default {{ type asym playback.pcm "speaker" capture.pcm "microphone" }}
"""


class Speaker(threading.Thread):
    """Reads the playback FIFO at ``rate``; ``samples()`` is everything played so far."""

    def __init__(self, path: Path, rate: int = OUT_RATE):
        super().__init__(name="test-speaker", daemon=True)
        self.path, self.rate = path, rate
        self._data = bytearray()
        self._lock = threading.Lock()

    def run(self) -> None:
        while self.path.exists():  # the card's folder is removed after a benchmark
            fd = os.open(self.path, os.O_RDONLY)  # waits for PortAudio to open the device
            try:
                fcntl.fcntl(fd, F_SETPIPE_SZ, 4096)  # ~90 ms in the pipe, like a DAC's buffer
            except OSError:
                pass
            start, read = time.monotonic(), 0
            while chunk := os.read(fd, self.rate // 200 * 2):  # 5 ms: a DAC drains steadily
                with self._lock:
                    self._data.extend(chunk)
                read += len(chunk)
                delay = start + read / (2 * self.rate) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            os.close(fd)

    def samples(self) -> np.ndarray:
        with self._lock:
            return np.frombuffer(bytes(self._data[: len(self._data) // 2 * 2]), dtype="<i2")

    def find(self, clip: np.ndarray, since: int = 0) -> int | None:
        """Where ``clip`` starts, exactly, in what was played after sample ``since``."""
        heard = self.samples()[since:]
        clip = np.asarray(clip, dtype=np.int16)
        anchor = int(np.flatnonzero(clip)[0]) if clip.any() else 0
        for i in np.flatnonzero(heard == clip[anchor]):
            start = i - anchor
            if start >= 0 and np.array_equal(heard[start:start + len(clip)], clip):
                return since + int(start)
        return None

    def wait_for(self, clip: np.ndarray, since: int = 0, timeout: float = 90) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (found := self.find(clip, since)) is not None:
                return found
            time.sleep(0.1)
        raise AssertionError(f"the clip never came out of the speaker ({len(clip)} samples)")


class Mic(threading.Thread):
    """Writes the capture FIFO at ``rate``: room noise, and the next utterance asked for."""

    def __init__(self, path: Path, rate: int = IN_RATE, noise: float = 60.0):
        super().__init__(name="test-mic", daemon=True)
        self.path, self.rate, self.noise = path, rate, noise
        self._pending: list[np.ndarray] = []
        self._lock = threading.Lock()
        self.openings = 0
        self.rng = np.random.default_rng(7)

    def say(self, samples: np.ndarray, lead_s: float = 0.3) -> None:
        """Speak ``samples`` at the next opening of the microphone, after ``lead_s`` of noise."""
        lead = self._noise(int(lead_s * self.rate))
        with self._lock:
            self._pending.append(np.concatenate([lead, np.asarray(samples, np.int16)]))

    def _noise(self, n: int) -> np.ndarray:
        return self.rng.normal(0, self.noise, n).astype(np.int16)

    def run(self) -> None:
        while self.path.exists():
            fd = os.open(self.path, os.O_WRONLY)  # waits for PortAudio to open the device
            self.openings += 1
            with self._lock:
                speech = self._pending.pop(0) if self._pending else np.zeros(0, np.int16)
            try:
                self._stream(fd, speech)
            except BrokenPipeError:
                pass  # the device was closed
            finally:
                os.close(fd)

    def _stream(self, fd: int, speech: np.ndarray) -> None:
        start, written, block = time.monotonic(), 0, self.rate // 50
        while True:
            chunk, speech = (speech[:block], speech[block:]) if len(speech) else (
                self._noise(block), speech)
            os.write(fd, chunk.astype("<i2").tobytes())
            written += len(chunk)
            delay = start + written / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)


class SoundCard:
    """The asoundrc, the FIFOs and the two threads; ``env`` points ALSA at them."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        speaker, mic = folder / "speaker.fifo", folder / "mic.fifo"
        for fifo in (speaker, mic):
            if not fifo.exists():
                os.mkfifo(fifo)
        self.config = folder / "asoundrc"
        self.config.write_text(ASOUNDRC.format(speaker=speaker, mic=mic))
        self.env = {"ALSA_CONFIG_PATH": str(self.config)}
        self.speaker, self.mic = Speaker(speaker), Mic(mic)
        self.speaker.start()
        self.mic.start()

    @property
    def position(self) -> int:
        """How many samples the speaker has played (mark it before an action)."""
        return len(self.speaker.samples())


# ---- a kiosk's data and a kiosk running in this process --------------------------------------

LESSONS_TOML = '''
[[lesson]]
slug = "casco"
key = "1"
title = "el casco"
topic = "Protección"
keywords = ["casco"]
script = "Use siempre su casco y sus guantes cuando sube a trabajar."

[[lesson]]
slug = "polvo"
key = "2"
title = "el polvo"
topic = "Polvo"
keywords = ["polvo"]
script = "El polvo de la roca daña los pulmones: use la mascarilla."
'''


def make_library(folder: Path) -> Path:
    """A data folder with two short lessons and every real prompt (synthesised with espeak-ng,
    at the speed `pallay init` uses)."""
    from audio_lessons import config, listeners, starter, store
    from audio_lessons.synth import Pyttsx3Synthesizer

    data = folder / "data"
    settings = config.load(data, environ={})
    db = store.connect(settings.db_path)
    listeners.load_or_create_secret(settings.secret_path)
    lessons = folder / "lessons.toml"
    lessons.write_text(LESSONS_TOML)
    starter.install(db, settings, Pyttsx3Synthesizer(settings.voice, settings.cache_dir),
                    lessons_file=lessons)
    db.close()
    return data


KIOSK_ENV = {"PALLAY_KIOSK_VOLUME": "1.0", "PALLAY_KIOSK_DEVICE": "kiosk-test",
             "PALLAY_KIOSK_ATTRACT_MINUTES": "0", "PALLAY_KIOSK_MESSAGE_SILENCE_S": "1.0",
             "PALLAY_KIOSK_LATENCY_MS": "40", "PALLAY_KIOSK_TALK": "off"}


class Running:
    """A kiosk built by ``kiosk.wiring`` running on its own thread; the test presses its keys."""

    def __init__(self, data: Path, env: dict | None = None, recognizer=None):
        import threading

        from audio_lessons import config
        from kiosk import wiring

        self.settings = config.load(data, environ={**KIOSK_ENV, **(env or {})})
        self.seen: list = []
        self._changed = threading.Condition()
        self.box = wiring.build(self.settings, keys=(), recognizer=recognizer,
                                observer=self._observe)
        self.kiosk = self.box.kiosk
        self.thread = threading.Thread(target=self.kiosk.run, name="kiosk", daemon=True)
        self.thread.start()

    def _observe(self, item) -> None:
        with self._changed:
            self.seen.append(item)
            self._changed.notify_all()

    def press(self, *keys: str) -> None:
        from kiosk.inbox import Press, Release

        for key in keys:
            self.kiosk.inbox.put(Press(key))
            self.kiosk.inbox.put(Release(key))

    def wait(self, test, timeout: float = 90, since: int = 0):
        """The first action or event seen (after index ``since``) for which ``test`` holds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for item in self.seen[since:]:
                    if test(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not seen in {timeout} s; last: {self.seen[-3:]}")
                self._changed.wait(left)

    def asked(self, prompt: str, since: int = 0, timeout: float = 90):
        """Wait until the engine asks a question that plays ``prompt``."""
        from audio_lessons import actions as a

        return self.wait(lambda x: isinstance(x, (a.Ask, a.Pause, a.Say))
                         and any(p.name == prompt for p in x.prompts), timeout, since)

    def until(self, condition, timeout: float = 90) -> None:
        """Wait for a condition on the kiosk's state (checked every 50 ms)."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "the kiosk never got there"
            time.sleep(0.05)

    def mark(self) -> int:
        with self._changed:
            return len(self.seen)

    def close(self) -> None:
        self.kiosk.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the kiosk did not stop"
        self.box.close()


# ---- fixtures (tests/conftest.py makes them available) --------------------------------------------------

import shutil

import pytest


@pytest.fixture(scope="session")
def sound_card(tmp_path_factory):
    """The file-plugin sound card, for this process (PortAudio re-reads ALSA's configuration)."""
    from tests.conftest import require

    require(Path("/usr/lib/x86_64-linux-gnu/libportaudio.so.2").exists()
            or bool(__import__("ctypes.util").util.find_library("portaudio")),
            "libportaudio2 is not installed (make install-test installs it)")
    card = SoundCard(tmp_path_factory.mktemp("soundcard"))
    os.environ.update(card.env)
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    return card


@pytest.fixture(scope="session")
def kiosk_library(tmp_path_factory):
    from tests.conftest import require_program

    require_program("espeak-ng")
    require_program("ffmpeg")
    return make_library(tmp_path_factory.mktemp("kiosk-library"))


@pytest.fixture
def kiosk_data(kiosk_library, tmp_path):
    """A fresh copy of the library for one test."""
    return Path(shutil.copytree(kiosk_library, tmp_path / "data"))


def clip(data: Path, hash_: str) -> np.ndarray:
    """The kiosk variant's samples, as a test compares them with what came out."""
    from audio_lessons import media
    from kiosk.clips import read_wav

    return read_wav(media.variant_path(data / "media", hash_, "kiosk"))[0]
