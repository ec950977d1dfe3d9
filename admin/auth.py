"""Log-in, log-out, and the checks every request passes: signed in, not expired, CSRF, role."""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
import time

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from admin.db import get_db
from audio_lessons import users

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
PUBLIC_ENDPOINTS = {"auth.login", "static", "i18n.choose"}


def csrf_token() -> str:
    """The session's CSRF token (created on first use); every form carries it."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        log.warning("POST %s refused: missing or wrong CSRF token", request.path)
        abort(400, description="csrf")


def _load_user() -> None:
    g.user = None
    name, seen = session.get("user"), session.get("seen", 0)
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    if name and time.time() - seen > lifetime:
        session.clear()
        flash("Su sesión terminó. Vuelva a entrar.", "info")
        return
    if name:
        g.user = users.get(get_db(), name)
        session["seen"] = int(time.time())


def before_request():
    if request.blueprint == "sync":
        return None  # edges authenticate with their bearer token: no cookie for CSRF to guard
    _load_user()
    if request.method == "POST":
        _check_csrf()
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.endpoint is None:
            return None  # a 404 stays a 404
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


# Only this site's own files; inline styles for the bar widths; blob: for the microphone preview.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'; form-action 'self'")


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app: Flask) -> None:
    app.before_request(before_request)
    app.after_request(security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token


def require(role: str):
    """A blueprint's before_request: refuse users below ``role`` (403)."""
    def check():
        if g.user is not None and not g.user.can(role):
            abort(403)
    return check


def role_required(role: str):
    """The same check for one view."""
    def wrap(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            require(role)()
            return view(*args, **kwargs)
        return wrapped
    return wrap


def index():
    if g.user.can("editor"):
        return redirect(url_for("lessons.index"))
    return redirect(url_for("dashboard.index"))


def _safe_next(target: str | None) -> str:
    # only a path on this site: never "//evil.example" or "https://..."
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("index")


@bp.route("/entrar", methods=["GET", "POST"])
def login():
    db = get_db()
    if request.method == "POST":
        try:
            user = users.authenticate(db, request.form.get("name", ""),
                                      request.form.get("password", ""),
                                      request.remote_addr or "?")
        except users.UserError as exc:
            flash(str(exc), "error")
            return render_template("login.html", no_users=users.count(db) == 0), 401
        session.clear()
        session.permanent = True
        session.update(user=user.name, seen=int(time.time()), csrf=secrets.token_urlsafe(32))
        log.info("%s logged in from %s", user.name, request.remote_addr)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", no_users=users.count(db) == 0)


@bp.route("/salir", methods=["POST"])
def logout():
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash("Salió del panel.", "info")
    return redirect(url_for("auth.login"))
