"""Statistics at a glance: totals, charts (inline SVG), every table, and each table as CSV."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request

from admin import auth, charts
from admin.db import get_db
from audio_lessons import reports, stats

bp = Blueprint("dashboard", __name__, url_prefix="/estadisticas")
bp.before_request(auth.require("viewer"))


def _filters() -> tuple[stats.Filters, str | None]:
    """The date range and channel asked for, and a Spanish message if they made no sense."""
    args = request.args
    channel = args.get("canal") if args.get("canal") in reports.CHANNELS else None
    try:
        return stats.filters(args.get("desde") or None, args.get("hasta") or None, channel), None
    except ValueError:
        return stats.filters(None, None, channel), "Fecha no válida: use el calendario (AAAA-MM-DD)."


@bp.route("/")
def index():
    db = get_db()
    f, error = _filters()
    tables = {name: reports.table(db, name, f) for name in reports.TABLES}
    return render_template(
        "dashboard/index.html", f=f, error=error, overview=reports.overview(db, f), tables=tables,
        day_chart=charts.stacked_days(tables["por-dia-canal"], 1, 2),
        language_chart=charts.stacked_days(tables["por-dia-idioma"], 1, 2),
        hour_chart=charts.bars([(r[0][:2], r[1]) for r in tables["por-hora"].rows]),
        top_chart=charts.hbars([(r[0], r[1]) for r in tables["lecciones"].rows[:10]]),
        query=request.query_string.decode())


@bp.route("/<name>.csv")
def csv(name: str):
    if name not in reports.TABLES:
        abort(404)
    f, _error = _filters()
    table = reports.table(get_db(), name, f)
    return Response("\ufeff" + table.csv(), mimetype="text/csv",  # BOM: Excel reads UTF-8 right
                    headers={"Content-Disposition": f'attachment; filename="pallay-{name}.csv"'})
