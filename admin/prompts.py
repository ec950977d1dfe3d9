"""Prompts: hear each, replace it with a recording, speak it again; the placeholders still waiting."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from admin import auth, uploads, worker
from admin.db import get_db, settings, synthesizer
from admin.i18n import gettext as _
from audio_lessons import prompts
from audio_lessons.errors import PallayError

bp = Blueprint("prompts", __name__, url_prefix="/avisos")
bp.before_request(auth.require("editor"))


# How prompts are grouped on the page, by the first part of their name (Spanish labels).
GROUPS = {"title": "Títulos de lecciones y menús", "digit": "Números", "quiz": "Preguntas"}
OTHERS = "Lo que dice la línea"


@bp.route("/")
def index():
    found = prompts.list_prompts(get_db())
    groups: dict[str, list[prompts.Prompt]] = {OTHERS: []}
    for p in found:
        groups.setdefault(GROUPS.get(p.name.split(":")[0], OTHERS), []).append(p)
    return render_template("prompts/index.html", groups=groups, total=len(found))


@bp.route("/pendientes")
def waiting():
    return render_template("prompts/waiting.html", items=prompts.placeholders(get_db()))


@bp.route("/grabacion", methods=["POST"])
def record():
    name, language = request.form.get("name", ""), request.form.get("language", "")
    target = request.form.get("back") or url_for("prompts.index")
    target = target if target.startswith("/") and not target.startswith("//") else url_for(
        "prompts.index")
    try:
        with uploads.saved() as (path, original):
            found = prompts.replace_with_recording(get_db(), settings(), name, language, path,
                                                   original, prepare=worker.prepare)
    except PallayError as exc:
        return uploads.failed(str(exc), target)
    return uploads.done(_("Aviso grabado con su voz."), target,
                        audio=url_for("lessons.audio", media_hash=found.media, variant="kiosk"),
                        seconds=found.duration_ms / 1000)


@bp.route("/regenerar", methods=["POST"])
def regenerate():
    name, language = request.form.get("name", ""), request.form.get("language", "")
    try:
        prompts.regenerate(get_db(), settings(), synthesizer(), name, language,
                           request.form.get("text") or None)
    except PallayError as exc:
        return uploads.failed(str(exc), url_for("prompts.index"))
    return uploads.done(_("Voz sintética generada de nuevo."), url_for("prompts.index"))
