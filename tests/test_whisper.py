"""The Whisper engine on real recorded Spanish (Debian's Asterisk prompts, a woman's voice)."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from audio_lessons.speech import COMMAND_WORDS, open_recognizer
from tests.conftest import require
from tests.models import WHISPER_MISSING, whisper_model

SOUNDS = Path("/usr/share/asterisk/sounds/es")  # asterisk-core-sounds-es-wav (make install-test)
DIGITS = ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"]
VOCABULARY = (DIGITS + ["domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre", "hoy", "mañana", "ayer", "no", "mensaje"])
WORDS = [(f"digits/{i}.wav", w) for i, w in enumerate(DIGITS)] + [
    ("digits/today.wav", "hoy"), ("digits/tomorrow.wav", "mañana"),
    ("digits/yesterday.wav", "ayer"), ("digits/day-2.wav", "martes")]
SENTENCES = ["agent-pass", "conf-unmuted", "vm-goodbye", "auth-thankyou", "conf-getpin",
             "vm-password", "demo-thanks", "pbx-invalid", "vm-intro", "conf-leaderhasleft"]


def phone_audio(path: Path) -> np.ndarray:
    raw = subprocess.run(["sox", str(path), "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16",
                          "-c", "1", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16)


def on_a_line(samples: np.ndarray, seed: int) -> np.ndarray:
    """Her word with 0.3 s of line noise (-50 dBFS) around it, as a caller's line carries it."""
    pad = np.zeros(2400)
    noise = np.random.default_rng(seed).normal(0, 32768 * 10 ** (-50 / 20), samples.size + 4800)
    return np.clip(np.concatenate([pad, samples, pad]) + noise, -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def whisper():
    require(whisper_model().is_dir(), WHISPER_MISSING)
    require(SOUNDS.is_dir(), f"recorded Spanish prompts at {SOUNDS} (make install-test)")
    return open_recognizer("whisper", whisper_model())


def test_her_words_are_heard_and_no_word_is_mistaken(whisper):
    decisions = [(word, whisper.recognise(on_a_line(phone_audio(SOUNDS / f), i), 8000, VOCABULARY))
                 for i, (f, word) in enumerate(WORDS)]
    wrong = [(word, h.text) for word, h in decisions if h.accepted and h.text != word]
    right = [word for word, h in decisions if h.accepted and h.text == word]
    assert wrong == []
    assert len(right) >= 11, [(w, h.text, round(h.confidence, 2), h.reason) for w, h in decisions]


def test_sentences_are_not_taken_for_commands(whisper):
    accepted = []
    for name in SENTENCES:
        heard = whisper.recognise(phone_audio(SOUNDS / f"{name}.wav"), 8000, VOCABULARY)
        if heard.accepted:
            accepted.append((name, heard.text))
    assert accepted == []


def test_the_line_grammar_and_a_streamed_word(whisper):
    """Fed in 20 ms chunks as the line streams her answer, the decision comes at her word's end."""
    clip = on_a_line(phone_audio(SOUNDS / "digits/4.wav"), 7)
    stream = whisper.stream(8000, [*COMMAND_WORDS, "polvo", "mercurio"])
    decisions = [d for d in (stream.feed(clip[i:i + 160]) for i in range(0, clip.size, 160)) if d]
    heard = decisions[0] if decisions else stream.finish()
    assert heard.accepted and heard.command == "4"


def test_silence_is_silence_and_any_word_is_known(whisper):
    quiet = on_a_line(np.zeros(8000, np.int16), 3)
    assert whisper.recognise(quiet, 8000, DIGITS).reason == "silence"
    assert whisper.missing_words(["casco", "mercurio"]) == ()


def test_a_long_list_of_words_still_finds_hers():
    """Unsure at first (a threshold no share reaches), Whisper decodes once more with the words
    as its previous text; a catalogue's worth of keywords must not overflow its 448 positions."""
    require(whisper_model().is_dir(), WHISPER_MISSING)
    require(SOUNDS.is_dir(), f"recorded Spanish prompts at {SOUNDS} (make install-test)")
    exacting = open_recognizer("whisper", whisper_model(), threshold=0.999)
    syllables = ["ca", "de", "lo", "mi", "pu", "ra", "se", "ti", "vo", "za", "ba", "fe", "go", "ju",
                 "ne", "sa", "mo"]
    many = [*VOCABULARY, *(a + b for a in syllables for b in syllables)]  # 323 words
    heard = exacting.recognise(on_a_line(phone_audio(SOUNDS / "digits/4.wav"), 5), 8000, many)
    assert heard.text == "cuatro", (heard.reason, heard.alternatives)


def test_callers_at_once_are_heard_as_one_at_a_time(whisper):
    """One loaded model serves every caller: decisions made side by side, from several threads
    sharing its workers, are the decisions made one after the other."""
    clips = [(on_a_line(phone_audio(SOUNDS / f), i), word) for i, (f, word) in enumerate(WORDS[:6])]
    alone = [whisper.recognise(clip, 8000, VOCABULARY) for clip, _ in clips]
    with ThreadPoolExecutor(len(clips)) as pool:
        together = list(pool.map(lambda c: whisper.recognise(c[0], 8000, VOCABULARY), clips))
    assert [(h.text, h.accepted) for h in together] == [(h.text, h.accepted) for h in alone]
    assert [h.confidence for h in together] == pytest.approx([h.confidence for h in alone], abs=1e-4)
