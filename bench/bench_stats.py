"""Dashboard queries over 1,000,000 listen events: each must answer in under 100 ms.

Generates a year of plausible traffic (40 lessons, 20,000 listeners, 2 phone nodes and 10 kiosks,
about two lessons per session with their navigation events) through the real schema and triggers,
then times every stats query (median of 5) under four filters. The baseline is the per-lesson query
computed straight from listen_events, without the rollup tables, in the same run.
Example: .venv/bin/python -m bench.bench_stats [listen_events]
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from audio_lessons import events, stats, store
from bench import Figure

TARGET_MS = 100.0
LESSONS = 40
LISTENERS = 20_000
DEVICES = [("phone", "nodo-1", 0.45), ("phone", "nodo-2", 0.25)] + [
    ("kiosk", f"kiosko-{i}", 0.03) for i in range(1, 11)]
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LISTEN_COLUMNS = ("id, channel, device, listener, lesson_id, language, input_method, started_at, "
                  "seconds_heard, furthest_ms, duration_ms, quartile, completed")


DAYS = [(START + dt.timedelta(days=n)).strftime("%Y-%m-%d") for n in range(400)]


def _stamp(second: int) -> str:
    """``second`` counted from START as a stored timestamp (strftime is too slow for millions)."""
    day, rest = divmod(second, 86400)
    return f"{DAYS[day]}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}Z"


def _session(rnd: random.Random, durations: list[int], listeners: list[str]):
    """One call or kiosk session: (listen rows, nav rows)."""
    def new_id() -> str:
        return f"{rnd.getrandbits(128):032x}"

    channel, device, _ = rnd.choices(DEVICES, weights=[d[2] for d in DEVICES])[0]
    listener = rnd.choice(listeners)
    session = new_id()
    at = rnd.randrange(365 * 86400 - 3600)
    navs = [(new_id(), session, channel, device, listener, "welcome", "", _stamp(at))]
    listens = []
    if rnd.random() < 0.55:  # about half never pass the home menu
        return listens, navs
    navs.append((new_id(), session, channel, device, listener, "menu", "main", _stamp(at)))
    for _ in range(rnd.choice((1, 1, 2, 2, 3, 4))):
        lesson = rnd.randrange(1, LESSONS + 1)
        duration = durations[lesson - 1]
        furthest = duration if rnd.random() < 0.35 else rnd.randrange(duration)
        q = events.quartile(furthest, duration)
        at += 20
        stamp = _stamp(at)
        listens.append((new_id(), channel, device, listener, lesson, "qu", "key", stamp,
                        furthest / 1000, furthest, duration, q, int(q == 4)))
        navs.append((new_id(), session, channel, device, listener, "lesson_start", str(lesson),
                     stamp))
        if q >= 3:
            navs.append((new_id(), session, channel, device, listener, "lesson_75", str(lesson),
                         stamp))
        at += furthest // 1000
    return listens, navs


def generate(db, total: int, seed: int = 7) -> tuple[int, int, float]:
    """Insert ``total`` listen events (and their sessions' nav events) in big transactions."""
    rnd = random.Random(seed)
    # Loading only: random ids land all over the indexes, so a big page cache saves re-reading
    # pages, and a crash while loading a throw-away data set costs nothing.
    db.execute("PRAGMA cache_size = -1500000")
    db.execute("PRAGMA synchronous = OFF")
    durations = [rnd.randrange(60_000, 240_000) for _ in range(LESSONS)]
    listeners = [f"{rnd.getrandbits(128):032x}" for _ in range(LISTENERS)]
    with store.write(db):
        for i in range(LESSONS):
            db.execute("INSERT INTO lessons (id, slug, title, created_at) VALUES (?, ?, ?, ?)",
                       [i + 1, f"leccion-{i + 1}", f"Lección {i + 1}", store.now()])
    started, listens_done, navs_done = time.perf_counter(), 0, 0
    while listens_done < total:
        listen_rows, nav_rows = [], []
        while len(listen_rows) < 50_000 and listens_done + len(listen_rows) < total:
            listens, navs = _session(rnd, durations, listeners)
            listen_rows += listens
            nav_rows += navs
        listen_rows = sorted(listen_rows[:total - listens_done])  # by id: fewer pages touched
        nav_rows.sort()
        with store.write(db):
            db.conn.executemany(f"INSERT INTO listen_events ({LISTEN_COLUMNS}) VALUES "
                                f"({', '.join('?' * 13)})", listen_rows)
            db.conn.executemany("INSERT INTO nav_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", nav_rows)
        listens_done += len(listen_rows)
        navs_done += len(nav_rows)
    db.execute("PRAGMA cache_size = -2000")  # back to the defaults, as the dashboard runs
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return listens_done, navs_done, time.perf_counter() - started


def _median_ms(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _baseline(db) -> None:
    """The per-lesson numbers straight from the events table, as one would without rollups."""
    db.execute("SELECT lesson_id, count(*), sum(quartile >= 1), sum(quartile >= 2), "
               "sum(quartile >= 3), sum(completed), count(DISTINCT listener) FROM listen_events "
               "GROUP BY lesson_id").fetchall()


def main(total: int = 1_000_000) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="pallay-bench-stats-") as tmp:
        db = store.connect(Path(tmp) / "pallay.db")
        listens, navs, seconds = generate(db, total)
        print(f"generated {listens:,} listen events and {navs:,} nav events in {seconds:.1f} s "
              f"({listens / seconds:,.0f} listens/s with triggers, batches of 50,000)")
        last_day = dt.date(2026, 12, 31)
        filter_sets = {
            "all time": {},
            "last 30 days": {"since": last_day - dt.timedelta(days=29), "until": last_day},
            "phone only": {"channel": "phone"},
            "one kiosk": {"channel": "kiosk", "device": "kiosko-3"},
        }
        queries = ["totals", "unique_listeners", "lessons", "menu_funnel", "by_day", "by_channel",
                   "by_device", "summary"]
        print(f"\n{'query':18s}" + "".join(f"{name:>14s}" for name in filter_sets) + "   target")
        worst = 0.0
        for name in queries:
            fn = getattr(stats, name)
            cells = [_median_ms(lambda f=fn, kw=kw: f(db, **kw)) for kw in filter_sets.values()]
            if name != "summary":
                worst = max(worst, *cells)
            if name == "lessons":
                per_lesson = cells[0]
            print(f"{name:18s}" + "".join(f"{ms:11.1f} ms" for ms in cells) + f"   {TARGET_MS:.0f} ms")
        base = _median_ms(lambda: _baseline(db), repeat=3)
        print(f"\nbaseline, per-lesson query on listen_events without rollups: {base:.1f} ms")
        print(f"slowest single query: {worst:.1f} ms -> "
              f"{'OK' if worst < TARGET_MS else 'OVER'} the {TARGET_MS:.0f} ms target "
              f"(summary runs all seven queries)")
        size = (Path(tmp) / "pallay.db").stat().st_size + (Path(tmp) / "pallay.db-wal").stat().st_size
        print(f"database size: {size / 1e6:.0f} MB")
        db.conn.close()
    return [Figure(f"slowest dashboard query, {listens:,} listens", f"{worst:.1f} ms",
                   f"< {TARGET_MS:.0f} ms", worst < TARGET_MS),
            Figure("per-lesson query, rollups / events table (baseline)",
                   f"{per_lesson / base:.3f}x ({per_lesson:.1f} vs {base:.1f} ms)")]


if __name__ == "__main__":
    main(*map(int, sys.argv[1:2]))  # python -m bench.bench_stats [EVENTS]
