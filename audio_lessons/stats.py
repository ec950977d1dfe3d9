"""Statistics for the admin dashboard and ``pallay stats``: listeners and completions, not calls.

Every query reads the rollup tables the triggers of migration m002 keep up to date (see store.py), so
it touches thousands of rows however many events there are. Days are Peru's local days; ``since`` and
``until`` are inclusive dates. Filters: ``channel`` ("phone" or "kiosk") and ``device``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

import sqlite_utils

from audio_lessons import store
from audio_lessons.errors import StatsError
from audio_lessons.events import QUARTILE_WEIGHTS

log = logging.getLogger(__name__)

EPOCH = dt.date(1970, 1, 1)
PERU = dt.timezone(dt.timedelta(hours=-5))  # the days of store.STATS_DAY_SQL
RELATIVE_DAYS = {"hoy": 0, "ayer": 1, "anteayer": 2}
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")  # how Peru writes dates
FUNNEL_STEPS = ("welcome", "menu", "lesson_start", "lesson_75")
DateLike = dt.date | str | None


@dataclass(frozen=True)
class Filters:
    """Which events a query counts; None means no limit."""

    since: dt.date | None = None
    until: dt.date | None = None
    channel: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class Reach:
    """Listens and how far they got: reached[k-1] listens reached quarter k (k=4 is the end).

    The derived numbers are fields, not properties, so ``dataclasses.asdict`` (JSON) carries them.
    """

    listens: int
    reached: tuple[int, int, int, int]
    seconds_heard: float
    completions: int = field(init=False)
    completion_rate: float = field(init=False)
    funnel: tuple[float, float, float, float] = field(init=False)  # shares reaching 25/50/75/100%
    effective_completions: float = field(init=False)  # weighted 0.3/0.6/0.83/1.0 by quarter

    def __post_init__(self) -> None:
        n, reached = self.listens, self.reached
        exact = [reached[k] - (reached[k + 1] if k < 3 else 0) for k in range(4)]
        derived = {
            "completions": reached[3],
            "completion_rate": reached[3] / n if n else 0.0,
            "funnel": tuple(r / n for r in reached) if n else (0.0, 0.0, 0.0, 0.0),
            "effective_completions": sum(QUARTILE_WEIGHTS[k + 1] * exact[k] for k in range(4)),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)


NO_REACH = Reach(0, (0, 0, 0, 0), 0.0)


@dataclass(frozen=True)
class LessonStats:
    lesson_id: int
    title: str
    reach: Reach
    unique_listeners: int


@dataclass(frozen=True)
class FunnelStep:
    step: str
    sessions: int
    share: float  # of the sessions that reached the first step


@dataclass(frozen=True)
class DayStats:
    day: dt.date
    reach: Reach


@dataclass(frozen=True)
class DeviceStats:
    channel: str
    device: str
    reach: Reach
    last_day: dt.date | None


@dataclass(frozen=True)
class Summary:
    filters: Filters
    totals: Reach
    unique_listeners: int
    lessons: list[LessonStats]
    funnel: list[FunnelStep]
    by_day: list[DayStats]
    by_channel: dict[str, Reach]
    by_device: list[DeviceStats]
    # People reached per channel: a kiosk listen counts the group that heard it (one if not asked)
    people: dict[str, int] = field(default_factory=dict)


def filters(since: DateLike = None, until: DateLike = None, channel: str | None = None,
            device: str | None = None) -> Filters:
    """The keyword filters every query takes: dates or text ``parse_day`` reads (StatsError if bad)."""
    first, last = _date(since), _date(until)
    if first and last and first > last:
        raise StatsError(f"La fecha de inicio ({first:%d/%m/%Y}) es posterior a la final "
                         f"({last:%d/%m/%Y}).")
    return Filters(first, last, channel or None, device or None)


def _date(value: DateLike) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return parse_day(value)


def parse_day(text: str, today: dt.date | None = None) -> dt.date:
    """A day as a leader writes it: 2026-11-30, 30/11/2026, hoy, ayer, anteayer (Peru's days).

    StatsError, with the forms it accepts, for anything else.
    """
    text = " ".join(str(text).lower().split())
    if text in RELATIVE_DAYS:
        today = today or dt.datetime.now(PERU).date()
        return today - dt.timedelta(days=RELATIVE_DAYS[text])
    try:
        if found := _DAY_MONTH_YEAR.fullmatch(text):
            day, month, year = map(int, found.groups())
            return dt.date(year, month, day)
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise StatsError(f"No se entiende la fecha «{text}». Escríbala como 30/11/2026 o 2026-11-30, "
                     "o diga hoy, ayer o anteayer.")


def _day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def _where(f: Filters, device_ids: list[int] | None = None) -> tuple[str, list]:
    """SQL conditions for ``f``; tables that name devices by number get ``device_ids`` instead."""
    clauses, args = ["1"], []
    if f.since:
        clauses.append("day >= ?")
        args.append(_day_number(f.since))
    if f.until:
        clauses.append("day <= ?")
        args.append(_day_number(f.until))
    if device_ids is not None:
        clauses.append(f"device IN ({', '.join('?' * len(device_ids))})")
        args += device_ids
    else:
        for column in ("channel", "device"):
            if getattr(f, column):
                clauses.append(f"{column} = ?")
                args.append(getattr(f, column))
    return " AND ".join(clauses), args


def _where_numbered(db: sqlite_utils.Database, f: Filters) -> tuple[str, list]:
    """_where for the distinct-listener tables, whose devices are stats_device_ids numbers."""
    if not (f.channel or f.device):
        return _where(f)
    sub, args = _where(Filters(channel=f.channel, device=f.device))
    # a literal list: a subquery in IN costs a third more over a million rows
    ids = [row[0] for row in db.execute(f"SELECT n FROM stats_device_ids WHERE {sub}", args)]
    return _where(f, ids)


_SUMS = ("sum(listens), sum(reached_1), sum(reached_2), sum(reached_3), sum(reached_4), "
         "sum(seconds_heard)")


def _reach(row) -> Reach:
    if not row or row[0] is None:
        return NO_REACH
    return Reach(int(row[0]), (int(row[1]), int(row[2]), int(row[3]), int(row[4])), float(row[5]))


def totals(db: sqlite_utils.Database, **filter_by: DateLike) -> Reach:
    """Listens, quarters reached and time heard over everything that matches ``f``."""
    f = filters(**filter_by)
    where, args = _where(f)
    return _reach(db.execute(f"SELECT {_SUMS} FROM stats_device_day WHERE {where}", args).fetchone())


def unique_listeners(db: sqlite_utils.Database, **filter_by: DateLike) -> int:
    """Distinct listeners (pseudonyms) who heard at least one lesson."""
    f = filters(**filter_by)
    where, args = _where_numbered(db, f)
    sql = f"SELECT count(DISTINCT listener) FROM stats_listener_day WHERE {where}"
    return db.execute(sql, args).fetchone()[0]


def lessons(db: sqlite_utils.Database, **filter_by: DateLike) -> list[LessonStats]:
    """Per lesson: listens, unique listeners, completion, quarter funnel; catalogue order first."""
    f = filters(**filter_by)
    where, args = _where(f)
    table = "stats_device_lesson_day" if f.device else "stats_lesson_day"
    reach = {row[0]: _reach(row[1:]) for row in db.execute(
        f"SELECT lesson_id, {_SUMS} FROM {table} WHERE {where} GROUP BY lesson_id", args)}
    where, args = _where_numbered(db, f)
    unique = dict(db.execute(f"SELECT lesson_id, count(DISTINCT listener) FROM "
                             f"stats_lesson_listener_day WHERE {where} GROUP BY lesson_id", args))
    titles = {row[0]: row[1] for row in db.execute(
        "SELECT id, title FROM lessons ORDER BY position, id")}
    ids = list(titles) + sorted(set(reach) - set(titles))
    return [LessonStats(i, titles.get(i, f"(lección borrada n.º {i})"), reach.get(i, NO_REACH),
                        unique.get(i, 0)) for i in ids]


def menu_funnel(db: sqlite_utils.Database, **filter_by: DateLike) -> list[FunnelStep]:
    """Sessions reaching the welcome, a menu, a lesson start and 75% of a lesson."""
    f = filters(**filter_by)
    where, args = _where(f)
    counts = dict(db.execute(f"SELECT step, sum(sessions) FROM stats_nav_day WHERE {where} "
                             f"GROUP BY step", args))
    first = counts.get(FUNNEL_STEPS[0]) or 0
    return [FunnelStep(step, counts.get(step) or 0, (counts.get(step) or 0) / first if first else 0.0)
            for step in FUNNEL_STEPS]


def by_day(db: sqlite_utils.Database, **filter_by: DateLike) -> list[DayStats]:
    """Listens per local day, oldest first; days without listens are left out."""
    f = filters(**filter_by)
    where, args = _where(f)
    rows = db.execute(f"SELECT day, {_SUMS} FROM stats_device_day WHERE {where} "
                      f"GROUP BY day ORDER BY day", args)
    return [DayStats(EPOCH + dt.timedelta(days=row[0]), _reach(row[1:])) for row in rows]


def by_channel(db: sqlite_utils.Database, **filter_by: DateLike) -> dict[str, Reach]:
    """Listens on the phone line and on the kiosks."""
    f = filters(**filter_by)
    where, args = _where(f)
    rows = db.execute(f"SELECT channel, {_SUMS} FROM stats_device_day WHERE {where} "
                      f"GROUP BY channel ORDER BY channel", args)
    return {row[0]: _reach(row[1:]) for row in rows}


def by_device(db: sqlite_utils.Database, **filter_by: DateLike) -> list[DeviceStats]:
    """Listens per device (phone node or kiosk) with the last day it recorded one."""
    f = filters(**filter_by)
    where, args = _where(f)
    rows = db.execute(f"SELECT channel, device, {_SUMS}, max(day) FROM stats_device_day "
                      f"WHERE {where} GROUP BY channel, device ORDER BY channel, device", args)
    return [DeviceStats(row[0], row[1], _reach(row[2:8]), EPOCH + dt.timedelta(days=row[8]))
            for row in rows]


def people(db: sqlite_utils.Database, **filter_by: DateLike) -> dict[str, int]:
    """People reached per channel: each listen counts the people who heard it together.

    A kiosk asks after a lesson heard to the end; a listen without a count (a phone call, a
    kiosk listen left early or unanswered) counts as one person.
    """
    f = filters(**filter_by)
    where, args = _where(f)
    rows = db.execute(f"SELECT channel, sum(people) FROM stats_people_day WHERE {where} "
                      f"GROUP BY channel ORDER BY channel", args)
    return {row[0]: int(row[1]) for row in rows}


def summary(db: sqlite_utils.Database, **filter_by: DateLike) -> Summary:
    """Everything the dashboard shows, for one set of filters."""
    f = filters(**filter_by)
    kw = filter_by
    return Summary(f, totals(db, **kw), unique_listeners(db, **kw), lessons(db, **kw),
                   menu_funnel(db, **kw), by_day(db, **kw), by_channel(db, **kw), by_device(db, **kw),
                   people(db, **kw))


ROLLUP_TABLES = ("stats_lesson_day", "stats_device_lesson_day", "stats_device_day",
                 "stats_lesson_listener_day", "stats_listener_day", "stats_nav_day",
                 "stats_people_day", "stats_facet_day")


def rebuild(db: sqlite_utils.Database) -> None:
    """Recompute every rollup from the raw events (after deleting events: the triggers only add)."""
    day = store.STATS_DAY_SQL.format(ts="started_at")
    sums = ("count(*), sum(quartile >= 1), sum(quartile >= 2), sum(quartile >= 3), "
            "sum(quartile >= 4), sum(coalesce(seconds_heard, 0))")
    measures = "listens, reached_1, reached_2, reached_3, reached_4, seconds_heard"
    chan, dev = "coalesce(channel, '')", "coalesce(device, '')"
    heard = "listener IS NOT NULL AND listener <> ''"
    ids = ("FROM listen_events e JOIN stats_listener_ids l ON l.listener = e.listener "
           "JOIN stats_device_ids d ON d.channel = coalesce(e.channel, '') "
           "AND d.device = coalesce(e.device, '')")
    statements = [
        *(f"DELETE FROM {table}" for table in ROLLUP_TABLES),
        (f"INSERT INTO stats_lesson_day (channel, day, lesson_id, {measures}) "
         f"SELECT {chan}, {day}, lesson_id, {sums} FROM listen_events GROUP BY 1, 2, 3"),
        (f"INSERT INTO stats_device_lesson_day (channel, device, day, lesson_id, {measures}) "
         f"SELECT {chan}, {dev}, {day}, lesson_id, {sums} FROM listen_events GROUP BY 1, 2, 3, 4"),
        (f"INSERT INTO stats_device_day (channel, device, day, {measures}) "
         f"SELECT {chan}, {dev}, {day}, {sums} FROM listen_events GROUP BY 1, 2, 3"),
        (f"INSERT OR IGNORE INTO stats_device_ids (channel, device) "
         f"SELECT DISTINCT {chan}, {dev} FROM listen_events WHERE {heard}"),
        (f"INSERT OR IGNORE INTO stats_listener_ids (listener) "
         f"SELECT DISTINCT listener FROM listen_events WHERE {heard}"),
        (f"INSERT OR IGNORE INTO stats_lesson_listener_day SELECT e.lesson_id, l.n, "
         f"{store.STATS_DAY_SQL.format(ts='e.started_at')}, d.n {ids}"),
        (f"INSERT OR IGNORE INTO stats_listener_day SELECT l.n, "
         f"{store.STATS_DAY_SQL.format(ts='e.started_at')}, d.n {ids}"),
        (f"INSERT INTO stats_people_day (channel, device, day, people, counted) "
         f"SELECT {chan}, {dev}, {day}, sum(coalesce(people, 1)), sum(people IS NOT NULL) "
         f"FROM listen_events GROUP BY 1, 2, 3"),
        # a session counts at the first row of each step, as the trigger counted it
        (f"INSERT INTO stats_nav_day (channel, device, day, step, sessions) "
         f"SELECT {chan}, {dev}, {store.STATS_DAY_SQL.format(ts='at')}, step, count(*) "
         f"FROM nav_events WHERE rowid IN (SELECT min(rowid) FROM nav_events GROUP BY session, step) "
         f"GROUP BY 1, 2, 3, 4"),
        (f"INSERT INTO stats_facet_day SELECT {chan}, {day}, coalesce(language, ''), "
         f"coalesce(input_method, ''), CAST(strftime('%H', started_at, '-5 hours') AS INTEGER), "
         f"count(*), sum(quartile >= 4) FROM listen_events GROUP BY 1, 2, 3, 4, 5"),
    ]
    with store.write(db):
        for sql in statements:
            db.conn.execute(sql)
    log.info("statistics rebuilt from the raw events")


CHANNEL_NAMES = {"phone": "teléfono", "kiosk": "kiosco"}


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def render(s: Summary) -> str:
    """The summary as plain Spanish text for a terminal (``pallay stats``)."""
    f = s.filters
    if f.since and f.until:
        period = f"del {f.since} al {f.until}"
    else:
        period = (f"desde el {f.since}" if f.since else f"hasta el {f.until}" if f.until
                  else "desde el inicio")
    where = " · ".join(x for x in (CHANNEL_NAMES.get(f.channel or ""), f.device) if x)
    where = where or "teléfono y kioscos"
    t = s.totals
    header = (f"{'Lección':32s} {'escuchas':>8s} {'oyentes':>8s} {'25%':>5s} {'50%':>5s} "
              f"{'75%':>5s} {'fin':>5s} {'efectivas':>9s}")
    overall = (f"Escuchas: {t.listens}   Oyentes: {s.unique_listeners}   "
               f"Terminadas: {t.completions} ({_pct(t.completion_rate)})   "
               f"Efectivas: {t.effective_completions:.1f}")
    lines = [f"Estadísticas {period} ({where})", overall, "", header]
    for le in s.lessons:
        r = le.reach
        lines.append(f"{le.title[:32]:32s} {r.listens:8d} {le.unique_listeners:8d} "
                     + " ".join(f"{_pct(x):>5s}" for x in r.funnel)
                     + f" {r.effective_completions:9.1f}")
    names = {"welcome": "bienvenida", "menu": "menú", "lesson_start": "inicio de lección",
             "lesson_75": "75 % escuchado"}
    lines += ["", "Recorrido de las llamadas y sesiones:"]
    lines += [f"  {names[step.step]:20s} {step.sessions:8d}  {_pct(step.share):>5s}"
              for step in s.funnel]
    channels = [f"  {CHANNEL_NAMES.get(ch, ch):20s} {r.listens:8d} escuchas"
                + (f", {s.people[ch]} personas" if ch == "kiosk" and ch in s.people else "")
                for ch, r in s.by_channel.items()]
    devices = [f"  {d.device or '(sin nombre)':20s} {d.reach.listens:8d} escuchas, "
               f"la última el {d.last_day}" for d in s.by_device]
    lines += ["", "Por canal:", *(channels or ["  (sin escuchas)"])]
    lines += ["", "Por equipo:", *(devices or ["  (sin escuchas)"])]
    return "\n".join(lines)
