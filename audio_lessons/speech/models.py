"""Speech models installed under DATA/models: list them, install from a folder, zip or URL.

Installation is atomic: the model is unpacked into a hidden folder beside the target and renamed
into place only once it is checked, so a power cut never leaves half a model that looks whole.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audio_lessons.errors import SpeechError
from audio_lessons.speech.kaldi import is_vosk_model

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
_LANG = re.compile(r"(?:^|[-_.])(es|qu|ay|en|ko|fr|pt|de|ru|cn|it)(?:$|[-_.])")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    engine: str  # "vosk" or "pocketsphinx"
    language: str  # from the folder name, "?" if it does not say
    size_bytes: int
    path: Path


def engine_of(folder: Path) -> str | None:
    """Which engine a folder is a model for, or None."""
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
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return ModelInfo(folder.name, engine, found.group(1) if found else "?", size, folder)


def list_models(models_dir: Path) -> list[ModelInfo]:
    """Models installed in ``models_dir`` (folders that are not models are skipped)."""
    if not models_dir.is_dir():
        return []
    found = [describe(p) for p in sorted(models_dir.iterdir())
             if p.is_dir() and not p.name.startswith(".")]
    return [m for m in found if m is not None]


def install(source: str, models_dir: Path, sha256: str | None = None,
            progress: Callable[[int, int | None], None] | None = None) -> ModelInfo:
    """Install a model from a folder, a .zip file, a URL or an official Vosk model name."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".install-") as tmp:
        work = Path(tmp)
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


def _place(root: Path, models_dir: Path, work: Path) -> ModelInfo:
    if engine_of(root) is None:
        raise SpeechError(f"{root.name} no es un modelo de Vosk ni de PocketSphinx.")
    _check_blobs(root)
    target = models_dir / root.name
    if target.exists():
        raise SpeechError(f"Ya hay un modelo instalado en {target}; bórrelo primero.")
    staged = work / "staged"
    shutil.copytree(root, staged)
    staged.rename(target)  # same file system: atomic
    info = describe(target)
    assert info is not None
    log.info("installed %s model %s (%d bytes)", info.engine, target, info.size_bytes)
    return info


def _download(url: str, dest: Path, progress) -> Path:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                if progress:
                    progress(len(chunk), total)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SpeechError(f"No se pudo descargar {url} ({reason}). ¿Sin conexión? Traiga el .zip "
                          "en una memoria USB e instálelo desde el archivo.") from exc
    return dest


def _check_sha256(path: Path, expected: str | None) -> None:
    if not expected:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
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
