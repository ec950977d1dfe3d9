"""The messages inbox: listen (logged), note, tag, urgent, done, publish as a testimony."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request, send_file, url_for

from admin import auth, uploads
from admin.db import get_db, settings, synthesizer
from admin.i18n import gettext as _
from audio_lessons import catalog, menus
from audio_lessons import messages as inbox
from audio_lessons.errors import PallayError

bp = Blueprint("messages", __name__, url_prefix="/mensajes")
bp.before_request(auth.require("editor"))


@bp.route("/")
def index():
    db = get_db()
    show_done = request.args.get("todos") == "1"
    tag = request.args.get("etiqueta") or None
    return render_template("messages/index.html",
                           found=inbox.inbox(db, show_done=show_done, tag=tag),
                           tags=inbox.all_tags(db), show_done=show_done, tag=tag)


def _message_or_404(message_id: str) -> inbox.Message:
    try:
        return inbox.get(get_db(), message_id)
    except PallayError:
        abort(404)


@bp.route("/<message_id>")
def show(message_id: str):
    db = get_db()
    message = _message_or_404(message_id)
    return render_template("messages/show.html", message=message,
                           listens=inbox.listens(db, message.id),
                           levels=menus.levels(menus.tree(db)),
                           lesson=catalog.get_lesson(db, message.lesson_id)
                           if message.lesson_id else None)


@bp.route("/<message_id>/audio")
def audio(message_id: str):
    """The recording; each listen from its start is logged (a seek's range request is not)."""
    message = _message_or_404(message_id)
    try:
        path = inbox.audio_path(settings(), message)
    except PallayError:
        abort(404)
    if request.headers.get("Range", "bytes=0-").startswith("bytes=0-"):
        inbox.log_listen(get_db(), message.id, g.user.name)
    return send_file(path, conditional=True, max_age=0)


@bp.route("/<message_id>", methods=["POST"])
def update(message_id: str):
    message = _message_or_404(message_id)
    form = request.form
    target = url_for("messages.show", message_id=message.id)
    try:
        inbox.update(get_db(), message.id, note=form.get("note", ""), tags=form.get("tags", ""),
                     urgent=bool(form.get("urgent")), done=bool(form.get("done")),
                     consent=bool(form.get("consent")))
    except PallayError as exc:
        return uploads.failed(str(exc), target)
    return uploads.done(_("Mensaje guardado."), target)


@bp.route("/<message_id>/publicar", methods=["POST"])
def publish(message_id: str):
    message = _message_or_404(message_id)
    form = request.form
    try:
        lesson_id = inbox.publish(get_db(), settings(), synthesizer(), message.id,
                                  title=form.get("title", ""), menu=form.get("menu") or "main",
                                  speaker=form.get("speaker", ""), user=g.user.name)
    except PallayError as exc:
        return uploads.failed(str(exc), url_for("messages.show", message_id=message.id))
    return uploads.done(_("Testimonio publicado como lección."),
                        url_for("lessons.show", lesson_id=lesson_id))
