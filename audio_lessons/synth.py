"""Text-to-speech for prompts and placeholder lessons: pyttsx3 on espeak-ng, in a child process.

Synthesis never runs on the hot path: prompts and starter lessons are rendered once, prepared as media
and played from files. A render goes through a child process so that a hung espeak cannot hang pallay:
the child is killed after ``VoiceSettings.timeout_seconds``. Results are cached by the sha256 of
(text, voice, rate) under ``cache_dir/tts/<hash>.wav``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from audio_lessons.config import VoiceSettings
from audio_lessons.errors import SynthesisError

log = logging.getLogger(__name__)

Item = tuple[str, str]  # (text, language)


class Synthesizer(Protocol):
    """Turns text into a WAV file."""

    def render(self, text: str, language: str) -> Path:
        """A WAV file speaking ``text`` in ``language``; raise SynthesisError if impossible."""
        ...

    def render_many(self, items: Sequence[Item]) -> list[Path]:
        """``render`` for many (text, language) pairs, in order, as cheaply as possible."""
        ...


def cache_key(text: str, voice: str, rate: int) -> str:
    """The cache name of one rendering: sha256 of (text, voice, rate)."""
    return hashlib.sha256(json.dumps([text, voice, rate]).encode("utf-8")).hexdigest()


class Pyttsx3Synthesizer:
    """pyttsx3 (espeak-ng driver) rendering in a killable child process, with a file cache."""

    def __init__(self, settings: VoiceSettings, cache_dir: Path,
                 command: Sequence[str] | None = None) -> None:
        # ``command`` lets tests start a child that really hangs in place of the pyttsx3 one.
        self.settings = settings
        self.dir = Path(cache_dir) / "tts"
        self.command = list(command or CHILD_COMMAND)

    def voice_for(self, language: str) -> str:
        voice = getattr(self.settings, f"voice_{language}", None)
        if not voice:
            raise SynthesisError(f"No hay voz sintética configurada para el idioma «{language}».")
        return voice

    def path_for(self, text: str, language: str) -> Path:
        return self.dir / f"{cache_key(text, self.voice_for(language), self.settings.rate)}.wav"

    def render(self, text: str, language: str) -> Path:
        return self.render_many([(text, language)])[0]

    def render_many(self, items: Sequence[Item]) -> list[Path]:
        """Render what is not cached yet in one child process; return a path per item, in order."""
        paths = []
        todo: dict[Path, tuple[str, str]] = {}  # cache path -> (text, voice); dedupes repeats
        for text, language in items:
            if not text or not text.strip():
                raise SynthesisError("No se puede sintetizar un texto vacío.")
            path = self.path_for(text, language)
            paths.append(path)
            if not path.exists() and path not in todo:
                todo[path] = (text, self.voice_for(language))
        if todo:
            self.dir.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            self._run_child(todo)
            log.info("synthesised %d texts in %.1f s", len(todo), time.monotonic() - started)
        return paths

    def _run_child(self, todo: dict[Path, tuple[str, str]]) -> None:
        # A plain subprocess rather than multiprocessing: nothing is pickled, the caller's __main__
        # is not re-imported, and a hung child is killed like any other process.
        tmp = {path: path.with_name(f".{path.stem}.{os.getpid()}.tmp.wav") for path in todo}
        with tempfile.TemporaryFile() as errors:
            child = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=errors, close_fds=True)
            try:
                reader = _LineReader(child.stdout.fileno())
                for path, (text, voice) in todo.items():
                    job = {"text": text, "voice": voice, "rate": self.settings.rate,
                           "path": str(tmp[path])}
                    self._ask(child, reader, job, errors)
                    _check_wav(tmp[path], text)
                    os.replace(tmp[path], path)
                child.stdin.close()
                child.wait(self.settings.timeout_seconds)
                errors.seek(0)
                if said := errors.read().decode("utf-8", "replace").strip():
                    log.warning("TTS child said: %s", said[-2000:])
            except subprocess.TimeoutExpired:
                log.warning("TTS child did not exit after its last job; killed")
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                child.stdout.close()
                for path in tmp.values():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)

    def _ask(self, child: subprocess.Popen, reader: _LineReader, job: dict, errors) -> None:
        """Send one job and wait for its answer, at most ``timeout_seconds``."""
        try:
            child.stdin.write((json.dumps(job) + "\n").encode("utf-8"))
            child.stdin.flush()
            answer = reader.readline(self.settings.timeout_seconds)
        except TimeoutError:
            child.kill()
            log.error("TTS child hung for %.2f s on %r; killed", self.settings.timeout_seconds,
                      job["text"][:60])
            raise SynthesisError("La voz sintética no respondió a tiempo y se detuvo.") from None
        except (BrokenPipeError, EOFError):
            child.kill()
            child.wait()
            errors.seek(0)
            log.error("TTS child died (exit code %s) on %r: %s", child.returncode,
                      job["text"][:60], errors.read()[-2000:].decode("utf-8", "replace"))
            raise SynthesisError("La voz sintética se detuvo con un error.") from None
        if answer != "ok":
            log.error("TTS failed on %r: %s", job["text"][:60], answer)
            raise SynthesisError(f"La voz sintética falló: {answer}")


CHILD_COMMAND = (sys.executable, "-c", "from audio_lessons.synth import child_main; child_main()")


class _LineReader:
    """Reads lines from a pipe with a deadline (a plain readline would wait for ever)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8")


def child_main() -> None:
    """The child process: render each JSON job read from stdin, answer "ok" or an error per line."""
    # pyttsx3 prints "Audio saved to ..." on stdout: keep stdout for answers, send prints elsewhere.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        import pyttsx3
        engine = pyttsx3.init("espeak")
        # pyttsx3's driver proxy starts "busy", so the first runAndWait runs the queued endLoop before
        # synthesis starts and returns at once while espeak still writes in its own thread. An empty
        # first run takes that out of the way; every later job waits for espeak's end-of-message.
        engine.runAndWait()
    except Exception as exc:  # noqa: BLE001 - told to the parent, which raises SynthesisError
        answers.write(f"pyttsx3/espeak-ng no disponible: {exc}".replace("\n", " ") + "\n")
        return
    for line in sys.stdin:
        job = json.loads(line)
        try:
            answers.write(_render_job(engine, job) + "\n")
        except Exception as exc:  # noqa: BLE001 - any failure is one line for the parent to raise
            answers.write(f"{type(exc).__name__}: {exc}".replace("\n", " ") + "\n")


def _render_job(engine, job: dict) -> str:
    engine.setProperty("voice", job["voice"])
    engine.setProperty("rate", job["rate"])
    # pyttsx3 2.99's espeak driver now and then writes an empty WAV or none at all (its event loop
    # races espeak's callback thread: a stop meant for the previous job cancels this one); a second
    # try has always produced the audio.
    for attempt in range(1, 4):
        _wait_idle()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(job["path"])
        # One save_to_file per runAndWait: queuing several loses files with the espeak driver.
        engine.save_to_file(job["text"].strip(), job["path"])
        engine.runAndWait()
        with contextlib.suppress(FileNotFoundError), wave.open(job["path"], "rb") as w:
            # Far shorter than any speech of this text means the race cut it: try again.
            if w.getnframes() / w.getframerate() >= _min_seconds(job["text"], job["rate"]):
                return "ok"
        print(f"no or cut audio on attempt {attempt}: {job['text'][:60]!r}", file=sys.stderr)
    return "no audio after 3 attempts"


def _min_seconds(text: str, rate: int) -> float:
    """A floor for the spoken length: espeak-ng says about 14 characters a second at 150 wpm; the
    fastest text in the starter pack takes 0.07 s a character, a third of that is surely cut."""
    return max(0.05, 0.02 * len(text.strip()) * 150 / max(rate, 1))


def _wait_idle() -> None:
    """Wait until espeak has finished the previous message, so a late stop cannot hit this one."""
    from pyttsx3.drivers import _espeak  # the binding pyttsx3's own driver uses

    deadline = time.monotonic() + 5
    while _espeak.IsPlaying() and time.monotonic() < deadline:
        time.sleep(0.005)


def _check_wav(path: Path, text: str) -> None:
    try:
        with wave.open(str(path), "rb") as w:
            frames = w.getnframes()
    except (FileNotFoundError, wave.Error, EOFError) as exc:
        log.error("TTS wrote no usable WAV for %r: %s", text[:60], exc)
        raise SynthesisError("La voz sintética no produjo audio.") from exc
    if frames == 0:
        raise SynthesisError("La voz sintética no produjo audio.")


class FakeSynthesizer:
    """A stand-in for unit tests: a short tone WAV whose length grows with the text."""

    def __init__(self, cache_dir: Path, ms_per_char: int = 40, rate: int = 16000) -> None:
        self.dir = Path(cache_dir) / "tts-fake"
        self.ms_per_char = ms_per_char
        self.rate = rate
        self.rendered: list[Item] = []  # what was actually synthesised (cache misses)

    def render(self, text: str, language: str) -> Path:
        return self.render_many([(text, language)])[0]

    def render_many(self, items: Iterable[Item]) -> list[Path]:
        return [self._render_one(text, language) for text, language in items]

    def _render_one(self, text: str, language: str) -> Path:
        if not text or not text.strip():
            raise SynthesisError("No se puede sintetizar un texto vacío.")
        key = cache_key(text, f"fake-{language}", self.ms_per_char)
        path = self.dir / f"{key}.wav"
        if path.exists():
            return path
        self.dir.mkdir(parents=True, exist_ok=True)
        # A frequency from the key, so different texts give different audio (and media hashes).
        freq = 200 + int(key[:4], 16) % 400
        n = max(self.rate // 2, len(text) * self.ms_per_char * self.rate // 1000)
        samples = (int(8000 * math.sin(2 * math.pi * freq * i / self.rate)) for i in range(n))
        tmp = path.with_name(f".{key}.{os.getpid()}.tmp.wav")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
        os.replace(tmp, path)
        self.rendered.append((text, language))
        return path
