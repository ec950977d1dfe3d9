"""Uploaded files: written under our own random name outside the web root, removed afterwards."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

from flask import flash, jsonify, redirect, request
from werkzeug.datastructures import FileStorage

from admin.db import settings
from admin.i18n import gettext as _
from audio_lessons.errors import PallayError


class NoFile(PallayError):
    pass


@contextlib.contextmanager
def saved(field: str = "audio") -> Iterator[tuple[Path, str]]:
    """(temporary path, name the browser gave) of the uploaded ``field``; deleted on exit.

    The browser's name is only ever shown (reduced by ``media.display_name``), never used as a path.
    """
    upload: FileStorage | None = request.files.get(field)
    if upload is None or not upload.filename:
        raise NoFile(_("Elija un archivo de audio o grabe con el micrófono."))
    folder = settings().cache_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload-{secrets.token_hex(12)}"
    try:
        upload.save(path)
        yield path, upload.filename
    finally:
        path.unlink(missing_ok=True)


def wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def done(message: str, target: str, **extra):
    """The answer to a form: JSON for the page's script, else a flash and a redirect."""
    if wants_json():
        return jsonify(ok=True, message=message, **extra)
    flash(message, "ok")
    return redirect(target)


def failed(message: str, target: str, status: int = 422):
    if wants_json():
        return jsonify(ok=False, message=message), status
    flash(message, "error")
    return redirect(target)
