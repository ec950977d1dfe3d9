"""Menus: what a caller hears, level by level; sub-menus, moving and reordering options."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from admin import auth, uploads
from admin.db import get_db, settings, synthesizer
from admin.i18n import gettext as _
from audio_lessons import catalog, menus
from audio_lessons.errors import PallayError

bp = Blueprint("menus", __name__, url_prefix="/menus")
bp.before_request(auth.require("editor"))


def _back() -> str:
    return url_for("menus.index") + (f"#menu-{request.form['menu']}"
                                     if request.form.get("menu") else "")


@bp.route("/")
def index():
    db = get_db()
    tree = menus.tree(db)
    levels = menus.levels(tree)
    prompts = {(name, lang): media for name, lang, media in catalog.prompt_media(db)}
    return render_template("menus/index.html", tree=tree, levels=levels, prompts=prompts,
                           advice={lv.slug: menus.full_menu_advice(db, lv.slug) for lv in levels},
                           max_depth=catalog.MAX_DEPTH, more=menus.MORE_LESSONS)


@bp.route("/nuevo", methods=["POST"])
def add():
    gather = tuple(k for k in request.form.getlist("gather") if k)
    try:
        slug = menus.add_submenu(get_db(), settings(), synthesizer(),
                                 title=request.form.get("title", ""),
                                 parent=request.form.get("parent") or catalog.ROOT_MENU,
                                 key=request.form.get("key") or None, gather=gather)
    except PallayError as exc:
        return uploads.failed(str(exc), url_for("menus.index"))
    return uploads.done(_("Submenú creado."), url_for("menus.index") + f"#menu-{slug}", slug=slug)


@bp.route("/mover", methods=["POST"])
def move():
    try:
        lesson = menus.move_lesson(get_db(), request.form.get("lesson", ""),
                                   request.form.get("to", ""), request.form.get("key") or None)
    except PallayError as exc:
        return uploads.failed(str(exc), _back())
    return uploads.done(_("«{title}» está ahora en la tecla {key}.", title=lesson.title,
                          key=lesson.key), url_for("menus.index") + f"#menu-{lesson.menu}")


@bp.route("/intercambiar", methods=["POST"])
def swap():
    try:
        menus.swap_keys(get_db(), request.form.get("menu", ""), request.form.get("a", ""),
                        request.form.get("b", ""))
    except PallayError as exc:
        return uploads.failed(str(exc), _back())
    return uploads.done(_("Orden cambiado."), _back())


@bp.route("/renombrar", methods=["POST"])
def rename():
    try:
        menus.rename(get_db(), settings(), synthesizer(), request.form.get("menu", ""),
                     request.form.get("title", ""))
    except PallayError as exc:
        return uploads.failed(str(exc), _back())
    return uploads.done(_("Título cambiado."), _back())


@bp.route("/borrar", methods=["POST"])
def delete():
    try:
        menus.delete(get_db(), request.form.get("menu", ""))
    except PallayError as exc:
        return uploads.failed(str(exc), _back())
    return uploads.done(_("Submenú borrado."), url_for("menus.index"))
