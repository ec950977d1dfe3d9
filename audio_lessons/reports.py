"""The dashboard's tables: ``stats`` queries plus the facets it lacks, each exportable as CSV.

Every table is a ``Table`` (title, column names, rows of plain values), so the panel shows and
exports the same numbers. Listeners appear only as counts; no table carries a pseudonym or number.
Facets (language, how a lesson was chosen, hour of day) read the ``stats_facet_day`` rollup.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

import sqlite_utils

from audio_lessons import stats

CHANNELS = {"phone": "teléfono", "kiosk": "kiosco", "simulator": "simulador"}
LANGUAGES = {"es": "español", "qu": "quechua"}
METHODS = {"key": "tecla", "voice": "voz", "button": "botón", "auto": "automático"}
STEPS = {"welcome": "bienvenida", "menu": "menú", "lesson_start": "inicio de lección",
         "lesson_75": "75 % escuchado"}


@dataclass(frozen=True)
class Table:
    name: str  # for the CSV file name and the URL
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()


def _facet_where(f: stats.Filters) -> tuple[str, list]:
    clauses, args = ["1"], []
    if f.since:
        clauses.append("day >= ?")
        args.append((f.since - stats.EPOCH).days)
    if f.until:
        clauses.append("day <= ?")
        args.append((f.until - stats.EPOCH).days)
    if f.channel:
        clauses.append("channel = ?")
        args.append(f.channel)
    return " AND ".join(clauses), args


def _facet(db: sqlite_utils.Database, f: stats.Filters, columns: str) -> list[tuple]:
    where, args = _facet_where(f)
    return db.execute(f"SELECT {columns}, sum(listens), sum(completions) FROM stats_facet_day "
                      f"WHERE {where} GROUP BY {columns} ORDER BY {columns}", args).fetchall()


def _day(n: int) -> str:
    return (stats.EPOCH + dt.timedelta(days=n)).isoformat()


def by_day_channel(db: sqlite_utils.Database, f: stats.Filters) -> Table:
    where, args = stats._where(stats.Filters(f.since, f.until, f.channel))
    rows = db.execute(f"SELECT day, channel, sum(listens), sum(reached_4) FROM stats_device_day "
                      f"WHERE {where} GROUP BY day, channel ORDER BY day, channel", args)
    return Table("por-dia-canal", "Escuchas por día y canal", ("día", "canal", "escuchas",
                                                                "terminadas"),
                 tuple((_day(d), CHANNELS.get(c, c), n, done) for d, c, n, done in rows))


def by_day_language(db: sqlite_utils.Database, f: stats.Filters) -> Table:
    rows = _facet(db, f, "day, language")
    return Table("por-dia-idioma", "Escuchas por día e idioma", ("día", "idioma", "escuchas",
                                                                 "terminadas"),
                 tuple((_day(d), LANGUAGES.get(lang, lang), n, done) for d, lang, n, done in rows))


def by_hour(db: sqlite_utils.Database, f: stats.Filters) -> Table:
    counts = {hour: (n, done) for hour, n, done in _facet(db, f, "hour")}
    return Table("por-hora", "Horas de más escucha (hora de Perú)", ("hora", "escuchas",
                                                                     "terminadas"),
                 tuple((f"{h:02d}:00", *counts.get(h, (0, 0))) for h in range(24)))


def by_method(db: sqlite_utils.Database, f: stats.Filters) -> Table:
    rows = _facet(db, f, "input_method")
    return Table("por-eleccion", "Cómo eligieron la lección (voz aceptada o tecla)",
                 ("elección", "escuchas", "terminadas"),
                 tuple((METHODS.get(m, m), n, done) for m, n, done in rows))


def lessons(db: sqlite_utils.Database, f: stats.Filters) -> Table:
    found = stats.lessons(db, since=f.since, until=f.until, channel=f.channel)
    rows = sorted(found, key=lambda le: -le.reach.listens)
    return Table("lecciones", "Lecciones (de la más escuchada a la menos)",
                 ("lección", "escuchas", "oyentes", "25 %", "50 %", "75 %", "fin",
                  "terminadas (%)", "efectivas"),
                 tuple((le.title, le.reach.listens, le.unique_listeners,
                        *(round(x * 100) for x in le.reach.funnel),
                        round(le.reach.completion_rate * 100), round(le.reach.effective_completions, 1))
                       for le in rows))


def funnel(db: sqlite_utils.Database, f: stats.Filters) -> Table:
    steps = stats.menu_funnel(db, since=f.since, until=f.until, channel=f.channel)
    rows = []
    for i, step in enumerate(steps):
        after = steps[i + 1].sessions if i + 1 < len(steps) else step.sessions
        rows.append((STEPS.get(step.step, step.step), step.sessions, round(step.share * 100),
                     max(0, step.sessions - after)))
    return Table("recorrido", "Recorrido de las llamadas: dónde se van",
                 ("paso", "sesiones", "% de la bienvenida", "se fueron aquí"), tuple(rows))


def devices(db: sqlite_utils.Database, f: stats.Filters) -> Table:
    found = stats.by_device(db, since=f.since, until=f.until, channel=f.channel)
    return Table("equipos", "Por equipo (línea o kiosco)",
                 ("canal", "equipo", "escuchas", "terminadas", "último día"),
                 tuple((CHANNELS.get(d.channel, d.channel), d.device or "(sin nombre)",
                        d.reach.listens, d.reach.completions, str(d.last_day or ""))
                       for d in found))


TABLES = {"por-dia-canal": by_day_channel, "por-dia-idioma": by_day_language,
          "lecciones": lessons, "recorrido": funnel, "por-eleccion": by_method,
          "por-hora": by_hour, "equipos": devices}


@dataclass(frozen=True)
class Overview:
    listens: int
    unique_listeners: int
    completions: int
    completion_rate: float
    effective_completions: float
    hours_heard: float


def overview(db: sqlite_utils.Database, f: stats.Filters) -> Overview:
    kw = {"since": f.since, "until": f.until, "channel": f.channel}
    t = stats.totals(db, **kw)
    return Overview(t.listens, stats.unique_listeners(db, **kw), t.completions, t.completion_rate,
                    t.effective_completions, t.seconds_heard / 3600)


def table(db: sqlite_utils.Database, name: str, f: stats.Filters) -> Table:
    """One table by name (KeyError if there is none)."""
    return TABLES[name](db, f)
