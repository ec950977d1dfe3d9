"""The phone line, live: calls up now, the callback and alert queue, announcing a new lesson."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, render_template, request, url_for

from admin import auth, uploads
from admin.db import get_db, settings
from admin.i18n import gettext as _
from audio_lessons import catalog, live, outgoing
from audio_lessons.errors import PallayError

bp = Blueprint("line", __name__, url_prefix="/linea")
bp.before_request(auth.require("editor"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@bp.route("/")
def index():
    db = get_db()
    show_all = request.args.get("todas") == "1"
    titles = {le.id: le.title for le in catalog.list_lessons(db)}
    return render_template(
        "line/index.html", snapshot=live.read(settings().data_dir / live.SNAPSHOT, _now()),
        queue=outgoing.queue(db, show_all=show_all), show_all=show_all, ready=outgoing.ready(db),
        subscribers=len(outgoing.subscribers(db)), titles=titles,
        published=[le for le in catalog.list_lessons(db, include_unpublished=False)
                   if le.recordings], kinds=outgoing.KIND, statuses=outgoing.STATUS,
        call_kinds=live.KIND)


@bp.route("/anunciar", methods=["POST"])
def announce():
    try:
        count = outgoing.announce(get_db(), settings().ivr, int(request.form.get("lesson", "0")),
                                  _now())
    except (PallayError, ValueError) as exc:
        return uploads.failed(str(exc) if isinstance(exc, PallayError) else _("Elija una lección."),
                              url_for("line.index"))
    return uploads.done(_("Aviso en cola para {count} oyentes: la línea las llamará en el horario "
                          "permitido.", count=count), url_for("line.index"))
