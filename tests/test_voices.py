"""The recorded voice test sets (tests/voices.py): manifests, files, noise conditions, fetching.

Manifest tests run everywhere; those that read audio need the voice's files (``make install-test``
gets both) and skip without them, or fail under CI=true.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests import voices
from tests.conftest import REPO, require

WORDS = voices.read_manifest(voices.WORDS_TSV)
SENTENCES = voices.read_manifest(voices.SENTENCES_TSV)


def usable(voice: str) -> str:
    require(voices.missing(voice) is None, voices.missing(voice) or "")
    return voice


@pytest.fixture(params=list(voices.VOICES))
def voice(request) -> str:
    return usable(request.param)


# ---- manifests ----------------------------------------------------------------------------------

def test_every_voice_has_each_vocabulary_word_once():
    assert len(voices.VOCABULARY) == 34 and "sí" not in voices.VOCABULARY
    for name in voices.VOICES:
        assert Counter(e.word for e in WORDS if e.voice == name) == Counter(voices.VOCABULARY)


def test_each_voice_has_40_to_45_different_sentences_without_a_command_word():
    commands = {voices._fold(w) for w in voices.VOCABULARY + voices._all_grammar_words()}
    for name in voices.VOICES:
        rows = [e for e in SENTENCES if e.voice == name]
        assert 40 <= len(rows) <= 45
        assert len({e.sha256 for e in rows}) == len(rows)
        assert not {(name, Path(e.file).with_suffix("").as_posix()) for e in rows} & set(voices.LEFT_OUT)
        for e in rows:
            assert not set(voices._fold(e.transcript).split()) & commands, e


def test_manifest_paths_stay_inside_the_voice_root():
    for e in WORDS + SENTENCES:
        assert e.voice in voices.VOICES and len(e.sha256) == 64
        assert not Path(e.file).is_absolute() and ".." not in Path(e.file).parts


def test_the_files_match_the_manifests_sha256(voice):
    for e in WORDS + SENTENCES:
        if e.voice == voice:
            data = (voices.root(voice) / e.file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == e.sha256, e.file


def test_a_changed_file_is_reported(tmp_path, monkeypatch):
    row = next(e for e in WORDS if e.voice == "co_july")
    target = voices.root("co_july", tmp_path) / row.file
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the recording")
    assert f"{row.file}: sha256 does not match the manifest" in voices.problems("co_july", tmp_path)
    assert len(voices.problems("co_july", tmp_path)) == 34 + 42


# ---- the clips ----------------------------------------------------------------------------------

def test_words_are_8khz_int16_with_a_line_noise_lead_in_and_tail(voice):
    clips = voices.words("white10", [voice])
    assert [c.word for c in clips] == list(voices.VOCABULARY)
    pad = round(voices.PAD_S * voices.RATE)
    for c in clips:
        speech = voices.decode(c.source)
        assert c.rate == 8000 and c.samples.dtype == np.int16 and c.start == pad
        assert len(c.samples) == len(speech) + 2 * pad
        assert np.std(c.samples[:pad]) > 0 and np.std(c.samples[-pad:]) > 0
        assert 0.3 < len(speech) / c.rate < 1.2


def test_sentences_last_1_2_to_8_seconds_and_expect_no_word(voice):
    for c in voices.sentences("clean", [voice]):
        assert c.word is None and 1.2 <= len(voices.decode(c.source)) / c.rate <= 8.0


@pytest.mark.parametrize("condition, target", [("white10", 10.0), ("babble10", 10.0),
                                               ("clean", 50.0)])
def test_the_noise_is_at_its_snr_over_the_speech(voice, condition, target):
    for c in voices.words(condition, [voice]) + voices.sentences(condition, [voice]):
        speech = voices.decode(c.source).astype(np.float64)
        noise = c.samples[c.start:c.start + len(speech)] / c.gain - speech
        assert voices.snr_db(speech, noise) == pytest.approx(target, abs=0.5), c.source


def test_babble_is_other_speech_not_white_noise(voice):
    """Babble rises and falls like talk: its 20 ms frame powers spread far more than white noise's."""
    def spread(c: voices.Clip) -> float:
        speech = voices.decode(c.source).astype(np.float64)
        noise = np.concatenate([c.samples[:c.start], c.samples[c.start + len(speech):]])
        return float(np.std(10 * np.log10(voices._frame_power(noise.astype(np.float64)) + 1)))
    babble, white = voices.words("babble10", [voice]), voices.words("white10", [voice])
    assert np.median([spread(c) for c in babble]) > 2 * np.median([spread(c) for c in white])


def test_clips_are_the_same_in_every_run(voice):
    first = voices.words("babble10", [voice])
    again = voices.words("babble10", [voice])
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(first, again))
    code = ("import hashlib; from tests import voices; print(hashlib.sha256(b''.join("
            f"c.samples.tobytes() for c in voices.words('babble10', ['{voice}'])[:5])).hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": "random"})
    here = hashlib.sha256(b"".join(c.samples.tobytes() for c in first[:5])).hexdigest()
    assert other.stdout.strip() == here


def test_mix_sets_the_snr_and_never_clips():
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 8000
    speech = 30000 * np.sin(2 * np.pi * 440 * t) * (t > 0.25)  # a loud tone after a pause
    noise = rng.standard_normal(8000 + 2 * 2400)
    mixed, gain = voices.mix(speech, noise, 0.0, 2400)
    assert gain < 1 and np.abs(mixed.astype(int)).max() <= 32767
    assert voices.snr_db(speech, mixed[2400:-2400] / gain - speech) == pytest.approx(0.0, abs=0.1)


def test_an_unknown_condition_is_refused():
    with pytest.raises(ValueError, match="clean, white10, babble10"):
        voices.words("pink5")


# ---- the phone line's grammars ------------------------------------------------------------------

def test_phone_grammars_are_what_the_menu_listens_for():
    assert voices.phone_grammar("yes_no") == ("dos", "no", "si", "sí", "uno")
    main = voices.phone_grammar("main_menu")
    assert {"mensaje", "cero", "siete", "ocho", "nueve", "polvo", "mercurio"} <= set(main)
    assert set(voices.VOCABULARY) & set(voices.phone_grammar("lesson_end")) == {
        "uno", "cuatro", "ocho", "cero"}


# ---- fetching the Colombian voice ---------------------------------------------------------------

def fake_apt_get(tmp_path, monkeypatch, script: str) -> None:
    """An apt-get first on PATH (apt-cache stays the real one)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_offline_fetch_fails_with_one_line_and_only_ci_fails_the_install(tmp_path, monkeypatch,
                                                                         capsys):
    fake_apt_get(tmp_path, monkeypatch, "echo \"E: Failed to fetch http://deb.debian.org/debian/"
                 "pool/main/a/x.deb  Temporary failure resolving 'deb.debian.org'\" >&2; exit 100")
    with pytest.raises(voices.Unavailable) as refused:
        voices.fetch(tmp_path / "cache")
    assert "offline?" in str(refused.value) and "\n" not in str(refused.value)
    monkeypatch.setenv("PALLAY_TEST_VOICES", str(tmp_path / "cache"))
    monkeypatch.setenv("CI", "true")
    assert voices.main(["--fetch"]) == 1
    monkeypatch.delenv("CI")
    assert voices.main(["--fetch"]) == 0
    assert capsys.readouterr().err.startswith("MISSING: asterisk-prompt-es-co (voice co_july): ")


def test_a_download_that_is_not_the_package_is_refused(tmp_path, monkeypatch):
    known = subprocess.run(["apt-cache", "show", voices.CO_PACKAGE], capture_output=True,
                           check=False)
    require(known.returncode == 0, f"apt's lists do not know {voices.CO_PACKAGE} (apt-get update)")
    fake_apt_get(tmp_path, monkeypatch, "echo tampered > asterisk-prompt-es-co_0_all.deb")
    with pytest.raises(voices.Unavailable, match="sha256 differs from apt-cache show's"):
        voices.fetch(tmp_path / "cache")
    assert not (tmp_path / "cache" / voices.CO_PACKAGE).exists()


def test_a_fresh_cache_gets_the_package_from_debian(tmp_path):
    try:
        got = voices.fetch(tmp_path / "cache")
    except voices.Unavailable as exc:
        require(False, f"cannot download {voices.CO_PACKAGE} here: {exc}")
    assert got == voices.root("co_july", tmp_path / "cache")
    assert voices.problems("co_july", tmp_path / "cache") == []


def test_make_install_test_fetches_the_voices():
    recipe = (REPO / "Makefile").read_text().split("install-test:")[1].split("\n\n")[0]
    assert "$(BIN)/python -m tests.voices --fetch" in recipe
