"""Accounts (admins only): add, change role, reset password, remove."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request, url_for

from admin import auth, uploads
from admin.db import get_db
from admin.i18n import gettext as _
from audio_lessons import users

bp = Blueprint("staff", __name__, url_prefix="/usuarios")
bp.before_request(auth.require("admin"))


@bp.route("/")
def index():
    return render_template("staff/index.html", found=users.list_users(get_db()), roles=users.ROLES)


@bp.route("/", methods=["POST"])
def add():
    form = request.form
    try:
        users.add(get_db(), form.get("name", ""), form.get("role", ""), form.get("password", ""))
    except users.UserError as exc:
        return uploads.failed(str(exc), url_for("staff.index"))
    return uploads.done(_("Usuario creado."), url_for("staff.index"))


@bp.route("/<name>", methods=["POST"])
def change(name: str):
    form = request.form
    db = get_db()
    try:
        if form.get("action") == "remove":
            users.remove(db, name, acting=g.user.name)
        elif form.get("action") == "password":
            users.set_password(db, name, form.get("password", ""))
        else:
            users.set_role(db, name, form.get("role", ""))
    except users.UserError as exc:
        return uploads.failed(str(exc), url_for("staff.index"))
    return uploads.done(_("Usuario actualizado."), url_for("staff.index"))
