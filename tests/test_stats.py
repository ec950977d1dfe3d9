"""Dashboard statistics checked against numbers worked out by hand on a small known data set."""

from __future__ import annotations

import datetime as dt

import pytest

from audio_lessons import catalog, events, stats, store
from audio_lessons.errors import StatsError
from audio_lessons.events import ListenEvent, NavEvent

D = 100_000  # every lesson here lasts 100 s: quarters at 25, 50, 75 s, the end from 98 s

# lesson, channel, device, listener, started_at (UTC), furthest_ms -> quartile
LISTENS = [
    ("A", "phone", "nodo-1", "L1", "2026-05-01T15:00:00Z", 10_000),  # 0
    ("A", "phone", "nodo-1", "L1", "2026-05-01T16:00:00Z", 100_000),  # 4
    ("A", "phone", "nodo-1", "L2", "2026-05-02T03:00:00Z", 80_000),  # 3, 22:00 on May 1st in Peru
    ("A", "kiosk", "kiosko-1", "L3", "2026-05-02T15:00:00Z", 50_000),  # 2
    ("A", "kiosk", "kiosko-2", None, "2026-05-03T15:00:00Z", 30_000),  # 1, a group: no listener
    ("B", "phone", "nodo-1", "L1", "2026-05-03T15:00:00Z", 99_000),  # 4
    ("B", "kiosk", "kiosko-1", "L3", "2026-05-03T16:00:00Z", 0),  # 0
]
SESSIONS = {  # session: (channel, steps)
    "s1": ("phone", ["welcome", "menu", "menu", "lesson_start", "lesson_75", "lesson_start",
                     "hangup"]),
    "s2": ("phone", ["welcome", "hangup"]),
    "s3": ("kiosk", ["welcome", "menu", "lesson_start"]),
    "s4": ("phone", ["welcome", "menu"]),
}


@pytest.fixture
def db(tmp_path):
    db = store.connect(tmp_path / "pallay.db")
    ids = {"A": catalog.add_lesson(db, slug="polvo", title="Polvo"),
           "B": catalog.add_lesson(db, slug="sol", title="Sol")}
    catalog.add_lesson(db, slug="nadie", title="Nadie la oyó")
    listens = [ListenEvent(events.new_id(), channel, device, who, ids[lesson], "qu", "key", at,
                           furthest / 1000, furthest, D)
               for lesson, channel, device, who, at, furthest in LISTENS]
    navs = [NavEvent(events.new_id(), session, channel, "nodo-1" if channel == "phone" else
                     "kiosko-1", None, step, "", f"2026-05-0{n}T15:00:00Z")
            for n, (session, (channel, steps)) in enumerate(SESSIONS.items(), start=1)
            for step in steps]
    events.record_many(db, listens[:3], navs[:5])
    for event in listens[3:]:
        events.record_listen(db, event)
    for event in navs[5:]:
        events.record_nav(db, event)
    events.record_many(db, listens, navs)  # a kiosk resending everything changes nothing
    yield db
    db.conn.close()


def by_title(rows):
    return {row.title: row for row in rows}


def test_per_lesson_listens_listeners_completion_and_quartiles(db):
    lessons = by_title(stats.lessons(db))
    assert list(lessons) == ["Polvo", "Sol", "Nadie la oyó"]  # catalogue order, idle lessons too
    a, b, idle = lessons["Polvo"], lessons["Sol"], lessons["Nadie la oyó"]
    assert a.reach.listens == 5 and a.unique_listeners == 3
    assert a.reach.reached == (4, 3, 2, 1)
    assert a.reach.funnel == pytest.approx((0.8, 0.6, 0.4, 0.2))
    assert a.reach.completions == 1 and a.reach.completion_rate == pytest.approx(0.2)
    assert a.reach.effective_completions == pytest.approx(0.3 + 0.6 + 0.83 + 1.0)
    assert a.reach.seconds_heard == pytest.approx(10 + 100 + 80 + 50 + 30)
    assert (b.reach.listens, b.unique_listeners, b.reach.reached) == (2, 2, (1, 1, 1, 1))
    assert b.reach.completion_rate == 0.5 and b.reach.effective_completions == pytest.approx(1.0)
    assert (idle.reach.listens, idle.unique_listeners, idle.reach.completion_rate) == (0, 0, 0.0)


def test_filters_by_local_day_channel_and_device(db):
    may_1 = by_title(stats.lessons(db, since="2026-05-01", until=dt.date(2026, 5, 1)))
    assert (may_1["Polvo"].reach.listens, may_1["Polvo"].unique_listeners) == (3, 2)
    assert may_1["Sol"].reach.listens == 0
    kiosk = by_title(stats.lessons(db, channel="kiosk"))
    assert (kiosk["Polvo"].reach.listens, kiosk["Polvo"].unique_listeners) == (2, 1)
    assert (kiosk["Sol"].reach.listens, kiosk["Sol"].unique_listeners) == (1, 1)
    one = by_title(stats.lessons(db, channel="kiosk", device="kiosko-1"))
    assert one["Polvo"].reach.reached == (1, 1, 0, 0) and one["Sol"].reach.reached == (0, 0, 0, 0)
    only_device = by_title(stats.lessons(db, device="kiosko-2"))
    assert (only_device["Polvo"].reach.listens, only_device["Polvo"].unique_listeners) == (1, 0)
    assert stats.unique_listeners(db) == 3
    assert stats.unique_listeners(db, channel="kiosk") == 1
    assert stats.unique_listeners(db, since="2026-05-02") == 2  # L1 (lesson B) and L3
    assert stats.unique_listeners(db, device="kiosko-9") == 0  # a device never heard from
    assert stats.lessons(db, device="kiosko-9")[0].reach.listens == 0
    with pytest.raises(StatsError, match="No se entiende la fecha «1 de mayo»"):
        stats.lessons(db, since="1 de mayo")


def test_listens_by_day_channel_and_device(db):
    days = {d.day.isoformat(): d.reach.listens for d in stats.by_day(db)}
    assert days == {"2026-05-01": 3, "2026-05-02": 1, "2026-05-03": 3}
    channels = stats.by_channel(db)
    assert {k: (r.listens, r.completions) for k, r in channels.items()} == {
        "kiosk": (3, 0), "phone": (4, 2)}
    devices = [(d.channel, d.device, d.reach.listens, d.last_day.isoformat())
               for d in stats.by_device(db)]
    assert devices == [("kiosk", "kiosko-1", 2, "2026-05-03"), ("kiosk", "kiosko-2", 1, "2026-05-03"),
                       ("phone", "nodo-1", 4, "2026-05-03")]
    totals = stats.totals(db, channel="phone")
    assert (totals.listens, totals.reached) == (4, (3, 3, 3, 2))


def test_menu_funnel_counts_sessions_once_per_step(db):
    funnel = [(f.step, f.sessions, f.share) for f in stats.menu_funnel(db)]
    assert funnel == [("welcome", 4, 1.0), ("menu", 3, 0.75), ("lesson_start", 2, 0.5),
                      ("lesson_75", 1, 0.25)]
    kiosk = [(f.step, f.sessions) for f in stats.menu_funnel(db, channel="kiosk")]
    assert kiosk == [("welcome", 1), ("menu", 1), ("lesson_start", 1), ("lesson_75", 0)]
    assert [f.sessions for f in stats.menu_funnel(db, since="2026-05-02", until="2026-05-03")] == [
        2, 1, 1, 0]


def test_summary_bundles_the_same_numbers(db):
    summary = stats.summary(db, channel="phone")
    assert summary.filters == stats.Filters(channel="phone")
    assert summary.totals.listens == 4 and summary.unique_listeners == 2
    assert by_title(summary.lessons)["Polvo"].reach.listens == 3
    assert [f.sessions for f in summary.funnel] == [3, 2, 1, 1]
    assert list(summary.by_channel) == ["phone"] and len(summary.by_device) == 1
    empty = stats.summary(db, since="2027-01-01")
    assert empty.totals.listens == 0 and empty.unique_listeners == 0 and empty.by_day == []
    assert all(f.share == 0.0 for f in empty.funnel)


def test_deleted_lessons_keep_their_listens(db):
    sol = catalog.get_lesson(db, "sol").id
    catalog.delete_lesson(db, sol)
    rows = {row.lesson_id: row for row in stats.lessons(db)}
    assert rows[sol].title.startswith("(lección borrada") and rows[sol].reach.listens == 2


def test_rebuild_reproduces_the_trigger_rollups_and_follows_deletions(db):
    def snapshot():
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in stats.ROLLUP_TABLES}

    kept = snapshot()
    assert all(kept.values())
    stats.rebuild(db)
    assert snapshot() == kept
    with store.write(db):
        db.execute("DELETE FROM listen_events WHERE listener = 'L2'")  # forgetting a listener
        db.execute("DELETE FROM nav_events WHERE session = 's4'")
    assert stats.unique_listeners(db) == 3  # the rollups only add ...
    stats.rebuild(db)  # ... until rebuilt
    assert stats.unique_listeners(db) == 2 and stats.totals(db).listens == 6
    assert [f.sessions for f in stats.menu_funnel(db)] == [3, 2, 2, 1]


def test_render_is_spanish_and_shows_the_numbers(db):
    text = stats.render(stats.summary(db, since="2026-05-01", channel="phone"))
    assert text.splitlines()[0] == "Estadísticas desde el 2026-05-01 (teléfono)"
    assert "Escuchas: 4   Oyentes: 2   Terminadas: 2 (50 %)" in text
    polvo = next(line for line in text.splitlines() if line.startswith("Polvo"))
    assert polvo.split() == ["Polvo", "3", "2", "67", "%", "67", "%", "67", "%", "33", "%", "1.8"]
    assert "inicio de lección" in text and "nodo-1" in text


def test_summary_as_json_carries_the_derived_rates(db):
    import dataclasses
    import json

    data = json.loads(json.dumps(dataclasses.asdict(stats.summary(db)), default=str))
    polvo = next(row for row in data["lessons"] if row["title"] == "Polvo")
    assert polvo["reach"]["completion_rate"] == pytest.approx(0.2)
    assert polvo["reach"]["funnel"] == pytest.approx([0.8, 0.6, 0.4, 0.2])
    assert data["totals"]["effective_completions"] == pytest.approx(2.73 + 1.0)


def test_forgetting_a_listener_keeps_listens_and_drops_her_from_unique_counts(db):
    from audio_lessons import listeners

    listeners.remember(db, "L1", language="qu")
    listeners.save_progress(db, "L1", 1, "qu", 5_000)
    assert listeners.forget(db, "L1") == 3
    assert stats.totals(db).listens == 7 and stats.unique_listeners(db) == 2
    assert by_title(stats.lessons(db))["Sol"].unique_listeners == 1
    assert listeners.language_of(db, "L1") is None and listeners.progress(db, "L1") == {}
    for table in ("listen_events", "nav_events", "listeners", "progress", "stats_listener_ids"):
        columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
        column = "listener" if "listener" in columns else "id"
        assert db.execute(f"SELECT count(*) FROM {table} WHERE {column} = 'L1'").fetchone()[0] == 0
    before = stats.summary(db)
    stats.rebuild(db)
    assert stats.summary(db) == before  # the same numbers a full recount gives
