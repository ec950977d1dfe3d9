"""Lessons: the list, a new lesson, one lesson's page (edit, recordings, history, quiz), audio."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request, send_file, url_for

from admin import auth, forms, uploads, worker
from admin.db import get_db, settings, synthesizer
from admin.i18n import gettext as _
from audio_lessons import catalog, media, menus, recordings, speech
from audio_lessons import lessons as lesson_rules
from audio_lessons.errors import PallayError

bp = Blueprint("lessons", __name__, url_prefix="/lecciones")
bp.before_request(auth.require("editor"))


@bp.route("/")
def index():
    db = get_db()
    tree = menus.tree(db)
    titles = {level.slug: level.title for level in menus.levels(tree)}
    return render_template("lessons/index.html", lessons=catalog.list_lessons(db), titles=titles)


@bp.route("/nueva", methods=["GET", "POST"])
def new():
    db = get_db()
    levels = menus.levels(menus.tree(db))
    form = request.form if request.method == "POST" else request.args
    advice = None
    if request.method == "POST":
        try:
            lesson_id = lesson_rules.create(db, settings(), synthesizer(), **forms.lesson_fields(form))
        except PallayError as exc:
            advice = menus.full_menu_advice(db, form.get("menu") or catalog.ROOT_MENU)
            return render_template("lessons/new.html", levels=levels, form=form, error=str(exc),
                                   advice=advice), 422
        return uploads.done(_("Lección creada. Ahora suba o grabe su audio."),
                            url_for("lessons.show", lesson_id=lesson_id))
    return render_template("lessons/new.html", levels=levels, form=form, error=None, advice=None)


def _lesson_or_404(lesson_id: int) -> catalog.Lesson:
    try:
        return catalog.get_lesson(get_db(), lesson_id)
    except PallayError:
        abort(404)


@bp.route("/<int:lesson_id>")
def show(lesson_id: int):
    db = get_db()
    lesson = _lesson_or_404(lesson_id)
    levels = menus.levels(menus.tree(db))
    return render_template(
        "lessons/show.html", lesson=lesson, levels=levels,
        versions=recordings.history(db, lesson.id), languages=catalog.languages(db),
        quiz=lesson_rules.quiz_question(db, lesson.slug),
        advice=menus.full_menu_advice(db, lesson.menu))


@bp.route("/<int:lesson_id>", methods=["POST"])
def edit(lesson_id: int):
    db = get_db()
    lesson = _lesson_or_404(lesson_id)
    target = url_for("lessons.show", lesson_id=lesson.id)
    try:
        lesson_rules.edit(db, settings(), synthesizer(), lesson.id, **forms.edit_fields(request.form))
        lesson_rules.set_quiz(db, settings(), synthesizer(), lesson.id,
                              request.form.get("quiz", ""), request.form.get("quiz_answer"))
    except PallayError as exc:
        return uploads.failed(str(exc), target)
    return uploads.done(_("Cambios guardados."), target)


@bp.route("/<int:lesson_id>/grabacion", methods=["POST"])
def upload(lesson_id: int):
    lesson = _lesson_or_404(lesson_id)
    target = url_for("lessons.show", lesson_id=lesson.id)
    language = request.form.get("language", "es")
    try:
        with uploads.saved() as (path, name):
            prepared = recordings.add(
                get_db(), settings(), lesson.id, language, path, name,
                speaker=request.form.get("speaker", ""), consent=bool(request.form.get("consent")),
                user=g.user.name, prepare=worker.prepare)
    except PallayError as exc:
        return uploads.failed(str(exc), target)
    return uploads.done(
        _("Grabación guardada: {seconds} segundos.", seconds=f"{prepared.duration_ms / 1000:.1f}"),
        target, audio=url_for("lessons.audio", media_hash=prepared.hash, variant="kiosk"),
        seconds=prepared.duration_ms / 1000)


@bp.route("/<int:lesson_id>/restaurar", methods=["POST"])
def restore(lesson_id: int):
    lesson = _lesson_or_404(lesson_id)
    target = url_for("lessons.show", lesson_id=lesson.id)
    try:
        recordings.restore(get_db(), settings(), lesson.id, request.form.get("language", ""),
                           request.form.get("media", ""), g.user.name)
    except (PallayError, ValueError) as exc:
        return uploads.failed(str(exc), target)
    return uploads.done(_("Grabación anterior restaurada."), target)


@bp.route("/<int:lesson_id>/palabras", methods=["POST"])
def check_words(lesson_id: int):
    """Can the configured recogniser hear this lesson's keywords? (slow: synthetic trials)"""
    lesson = _lesson_or_404(lesson_id)
    recognizer = speech.from_settings(settings())
    if recognizer is None:
        return uploads.failed(_("La voz no está activada en este equipo ([speech] engine y model): "
                                "las oyentes eligen con las teclas."),
                              url_for("lessons.show", lesson_id=lesson.id))
    reports = lesson_rules.check_keywords(get_db(), lesson.id, recognizer)
    return render_template("lessons/words.html", lesson=lesson, reports=reports)


@bp.route("/<int:lesson_id>/borrar", methods=["POST"])
def delete(lesson_id: int):
    lesson = _lesson_or_404(lesson_id)
    lesson_rules.remove(get_db(), lesson.id)
    return uploads.done(_("Lección borrada. Sus estadísticas se conservan."),
                        url_for("lessons.index"))


@bp.route("/audio/<media_hash>.<variant>.wav")
def audio(media_hash: str, variant: str):
    """A prepared variant, for the page's players (editors only, like the recordings)."""
    try:
        path = media.variant_path(settings().media_dir, media_hash, variant)
    except (ValueError, FileNotFoundError):
        abort(404)
    if variant not in media.VARIANTS or not path.is_file():
        abort(404)
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=3600)


