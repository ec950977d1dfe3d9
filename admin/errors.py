"""Friendly error pages in the reader's language; never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from admin.i18n import gettext as _

log = logging.getLogger(__name__)


def _page(code: int, title: str, text: str):
    if request.accept_mimetypes.best == "application/json" or request.headers.get("X-Requested-With"):
        return {"ok": False, "message": text}, code
    return render_template("error.html", code=code, title=title, text=text), code


def handle(exc: HTTPException):
    code = exc.code or 500
    if code == 413:
        limit = request.max_content_length or 0
        return _page(413, _("Archivo demasiado grande"),
                     _("El archivo pasa el límite de {mb} MB. Acorte la grabación o guárdela en "
                       "menor calidad (por ejemplo, como nota de voz) y vuelva a subirla.",
                       mb=limit // (1024 * 1024)))
    if code == 400 and exc.description == "csrf":
        return _page(400, _("El formulario caducó"),
                     _("Vuelva a la página anterior, recárguela y envíe el formulario otra vez."))
    if code == 403:
        return _page(403, _("Sin permiso"),
                     _("Su usuario no puede abrir esta página. Pida acceso a una administradora."))
    if code == 404:
        return _page(404, _("No encontrado"), _("Esta página no existe."))
    return _page(code, _("Algo salió mal"), _("Inténtelo de nuevo."))


def unexpected(exc: Exception):
    log.exception("unexpected error on %s %s", request.method, request.path)
    return _page(500, _("Algo salió mal"),
                 _("El panel tuvo un error. Inténtelo de nuevo; si sigue, avise al equipo técnico."))


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(Exception, unexpected)
