"""Text-to-speech: real pyttsx3 on espeak-ng in a child process, its cache, its timeout, the fake."""

from __future__ import annotations

import os
import sys
import time
import tomllib
import wave
from pathlib import Path

import numpy as np
import pytest

from audio_lessons.config import VoiceSettings
from audio_lessons.errors import SynthesisError
from audio_lessons.synth import FakeSynthesizer, Pyttsx3Synthesizer
from tests.conftest import require, require_program

LESSONS = Path(__file__).resolve().parent.parent / "audio_lessons" / "starter" / "lessons.toml"


@pytest.fixture()
def tts(tmp_path: Path) -> Pyttsx3Synthesizer:
    require_program("espeak-ng")
    try:
        import pyttsx3  # noqa: F401
    except ImportError:
        require(False, "pyttsx3 is not installed")
    return Pyttsx3Synthesizer(VoiceSettings(), tmp_path / "cache")


def read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
        return data, w.getframerate(), w.getnchannels()


def dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12)


def test_a_starter_lesson_is_one_to_two_minutes_of_mono_speech(tts: Pyttsx3Synthesizer) -> None:
    script = tomllib.loads(LESSONS.read_text(encoding="utf-8"))["lesson"][0]["script"]
    samples, rate, channels = read_wav(tts.render(script, "es"))
    assert channels == 1
    assert 60 <= len(samples) / rate <= 120
    # Speech: loud enough overall, with pauses between words and sentences but mostly voiced.
    frames = samples[: len(samples) // (rate // 20) * (rate // 20)].reshape(-1, rate // 20)
    voiced = np.mean([dbfs(f) > -40 for f in frames])
    assert -30 < dbfs(samples) < -6
    assert 0.5 < voiced < 0.97


def test_a_cached_text_is_not_synthesised_again(tts: Pyttsx3Synthesizer, tmp_path: Path) -> None:
    first = tts.render("Para el polvo, marque cuatro.", "es")
    stamp = first.stat().st_mtime_ns
    # A "synthesiser" whose child would fail at once: only the cache can answer.
    broken = Pyttsx3Synthesizer(VoiceSettings(), tmp_path / "cache",
                                command=[sys.executable, "-c", "raise SystemExit(3)"])
    assert broken.render("Para el polvo, marque cuatro.", "es") == first
    assert first.stat().st_mtime_ns == stamp
    with pytest.raises(SynthesisError):
        broken.render("Otro texto, que no está en la caché.", "es")


def test_the_cache_key_covers_voice_and_rate(tts: Pyttsx3Synthesizer, tmp_path: Path) -> None:
    slow = Pyttsx3Synthesizer(VoiceSettings(rate=110), tmp_path / "cache")
    spain = Pyttsx3Synthesizer(VoiceSettings(voice_es="roa/es"), tmp_path / "cache")
    paths = {s.render("Buenos días, compañera.", "es") for s in (tts, slow, spain)}
    assert len(paths) == 3
    durations = {p: len(read_wav(p)[0]) for p in paths}
    assert durations[slow.path_for("Buenos días, compañera.", "es")] > durations[
        tts.path_for("Buenos días, compañera.", "es")]


def test_render_many_uses_one_child_for_a_batch(tts: Pyttsx3Synthesizer) -> None:
    texts = [f"Para la lección {n}, marque {n}." for n in range(1, 31)]
    started = time.monotonic()
    paths = tts.render_many([(t, "es") for t in texts] + [(texts[0], "qu")])
    elapsed = time.monotonic() - started
    assert len(set(paths[:30])) == 30
    # voice_qu is the same Spanish voice by default, so the same text is the same file.
    assert paths[30] == paths[0]
    for path in paths:
        samples, _, _ = read_wav(path)
        assert 1.0 < len(samples) / 22050 < 5 and dbfs(samples) > -30
    # One child for 30 texts; a child per text costs about 0.15 s of start-up each.
    assert elapsed < 4, elapsed
    assert not list(tts.dir.glob(".*tmp*")), "temporary files left behind"


def test_empty_text_and_unknown_language_raise(tts: Pyttsx3Synthesizer) -> None:
    with pytest.raises(SynthesisError, match="vacío"):
        tts.render("   ", "es")
    with pytest.raises(SynthesisError, match="ay"):
        tts.render("Kamisaki", "ay")


def test_a_hung_child_is_killed_after_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    hang = ("import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
            "sys.stdin.readline(); time.sleep(600)")
    tts = Pyttsx3Synthesizer(VoiceSettings(timeout_seconds=1.0), tmp_path / "cache",
                             command=[sys.executable, "-c", hang, str(pid_file)])
    started = time.monotonic()
    with pytest.raises(SynthesisError, match="a tiempo"):
        tts.render("Hola, compañera.", "es")
    assert 1.0 <= time.monotonic() - started < 3.0
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists(), "the hung child is still alive"
    assert not list((tmp_path / "cache" / "tts").iterdir())


def test_a_real_render_slower_than_the_timeout_fails_cleanly(tmp_path: Path) -> None:
    require_program("espeak-ng")
    tts = Pyttsx3Synthesizer(VoiceSettings(timeout_seconds=0.01), tmp_path / "cache")
    with pytest.raises(SynthesisError):
        tts.render("Hola, compañera. Esta frase no alcanza a salir.", "es")
    assert not list((tmp_path / "cache" / "tts").iterdir())


def test_a_child_that_dies_raises(tmp_path: Path) -> None:
    tts = Pyttsx3Synthesizer(VoiceSettings(timeout_seconds=5), tmp_path / "cache",
                             command=[sys.executable, "-c", "import os; os._exit(9)"])
    with pytest.raises(SynthesisError, match="se detuvo"):
        tts.render("Hola.", "es")


def test_the_fake_writes_a_tone_whose_length_follows_the_text(tmp_path: Path) -> None:
    fake = FakeSynthesizer(tmp_path)
    short, long = fake.render_many([("Hola.", "es"), ("Hola, compañera. " * 10, "es")])
    assert len(read_wav(long)[0]) > 5 * len(read_wav(short)[0])
    assert fake.render("Hola.", "es") == short
    assert fake.rendered == [("Hola.", "es"), ("Hola, compañera. " * 10, "es")]
    with pytest.raises(SynthesisError):
        fake.render("", "es")
    assert os.path.getsize(short) > 44
