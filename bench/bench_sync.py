"""Sync over loopback HTTP (waitress in its own process): what moves, and how fast events go up.

Content: a server with 100 published lessons (kiosk variant of LESSON_SECONDS each); a kiosk syncs,
syncs again with nothing changed, then after a leader re-recorded 5 lessons. The baseline is what
a sync without a manifest would move: every file again. The media files are written directly
(random bytes of a real variant's size): the sync only hashes and copies them, and preparing 100
real recordings would take minutes of ffmpeg that measure nothing here.
Events: 100,000 events (half listens, half menu steps) pushed from a kiosk, against a baseline in
the same run: the same rows written with one plain bulk INSERT (``record_many``, same schema and
statistics triggers) into a fresh server database.
Example: .venv/bin/python -m bench.bench_sync
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from audio_lessons import catalog, events, outbox, store, sync
from bench import Figure
from kiosk import sync as client
from tests import sync_helpers as h

LESSONS = 100
CHANGED = 5
LESSON_SECONDS = 20  # a 2-minute lesson is 6x these bytes; the ratios stay the same
EVENTS = 100_000


def _media(db, settings, n: int) -> str:
    digest = hashlib.sha256(f"bench media {n} {time.time()}".encode()).hexdigest()[:32]
    for variant, rate in (("kiosk", settings.media.kiosk_rate), ("phone", settings.media.phone_rate)):
        (settings.media_dir / f"{digest}.{variant}.wav").write_bytes(
            os.urandom(44 + 2 * rate * LESSON_SECONDS))
    with store.write(db):
        db["media"].insert({"hash": digest, "duration_ms": LESSON_SECONDS * 1000,
                            "original_ext": "wav", "created_at": store.now()})
    return digest


def _server(folder: Path):
    settings = h.settings_for(folder)
    settings.media_dir.mkdir(parents=True)
    db = sync.connect(settings.db_path)
    slots = []  # 7 menus under main, each with 8 lessons and a sub-menu of 9: room for 119
    for i in range(7):
        catalog.add_menu(db, f"a{i}", f"tema {i}")
        catalog.add_menu(db, f"b{i}", f"más del tema {i}", parent=f"a{i}")
        slots += [f"a{i}"] * 8 + [f"b{i}"] * 9
    for n, menu in enumerate(slots[:LESSONS], start=1):
        catalog.add_lesson(db, slug=f"l{n}", title=f"lección {n}", menu=menu)
        catalog.set_recording(db, n, "es", _media(db, settings, n))
    return settings, db


def _sync(edge) -> tuple[client.Client, float]:
    http = client.Client.from_settings(edge)
    started = time.perf_counter()
    client.sync_once(edge, http)
    return http, time.perf_counter() - started


def content(tmp: Path) -> list[tuple]:
    settings, db = _server(tmp / "server")
    token = h.add_edge(db, "sala-1")
    server = h.WaitressProcess(settings.data_dir)
    edge = h.make_edge(tmp / "edge", server.url, token)
    rows = []
    try:
        for label in ("first sync, 100 lessons", "again, nothing changed"):
            http, seconds = _sync(edge)
            rows.append((label, http.traffic, seconds))
        for n in range(1, CHANGED + 1):
            catalog.set_recording(db, n * 17, "es", _media(db, settings, 1000 + n))
        http, seconds = _sync(edge)
        rows.append((f"after {CHANGED} lessons re-recorded", http.traffic, seconds))
    finally:
        server.stop()
    wanted = sync.build_manifest(db, settings.media_dir).wanted(edge.sync.variants)
    rows.append(("baseline: every file again", client.Traffic(
        files=len(wanted), bytes_in=sum(e.size for e in wanted)), None))
    return rows


def _events(db) -> None:
    listens, navs = [], []
    for i in range(EVENTS // 2):
        at = f"2026-03-{1 + i % 28:02d}T{8 + i % 12:02d}:{i % 60:02d}:00Z"
        listens.append(events.ListenEvent(events.new_id(), "kiosk", "sala-1", f"{i % 3000:032x}",
                                          1 + i % 40, "qu", "button", at, 60.0, 90_000, 120_000))
        navs.append(events.NavEvent(events.new_id(), f"s{i // 5}", "kiosk", "sala-1", None,
                                    ("menu", "lesson_start", "lesson_75", "lesson_end", "hangup")[i % 5],
                                    str(1 + i % 40), at))
    events.record_many(db, listens, navs)


def events_up(tmp: Path) -> tuple[float, float, int]:
    """(seconds to push over HTTP, seconds of the bulk INSERT baseline, events on the server)."""
    server_settings = h.settings_for(tmp / "server")
    sdb = sync.connect(server_settings.db_path)
    token = h.add_edge(sdb, "sala-1")
    edge = h.make_edge(tmp / "edge", "", token)
    edb = sync.connect(edge.db_path)
    _events(edb)
    rows = [row for _, row in outbox.stream_rows(edb, "listens", 0, EVENTS)]
    navs = [row for _, row in outbox.stream_rows(edb, "navs", 0, EVENTS)]
    base_db = sync.connect(tmp / "baseline.db")
    started = time.perf_counter()
    events.record_many(base_db, [events.ListenEvent(**r) for r in rows],
                       [events.NavEvent(**r) for r in navs])
    baseline = time.perf_counter() - started
    server = h.WaitressProcess(server_settings.data_dir)
    try:
        edge = h.make_edge(tmp / "edge", server.url, token)
        http = client.Client.from_settings(edge)
        started = time.perf_counter()
        client.push(edb, edge, http)
        pushed = time.perf_counter() - started
    finally:
        server.stop()
    held = sdb.execute("SELECT (SELECT count(*) FROM listen_events) + "
                       "(SELECT count(*) FROM nav_events)").fetchone()[0]
    return pushed, baseline, held


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="pallay-bench-sync-") as tmp:
        rows = content(Path(tmp) / "content")
        pushed, bulk, held = events_up(Path(tmp) / "events")
    return _content_report(rows) + _events_report(pushed, bulk, held)


def _content_report(rows: list[tuple]) -> list[Figure]:
    print(f"{'content sync':34s} {'files':>6s} {'MB in':>8s} {'requests':>8s} {'seconds':>8s}")
    for label, traffic, seconds in rows:
        shown = f"{seconds:8.2f}" if seconds is not None else f"{'-':>8s}"
        print(f"{label:34s} {traffic.files:6d} {traffic.bytes_in / 1e6:8.2f} "
              f"{traffic.requests:8d} {shown}")
    changed, baseline = rows[2][1], rows[3][1]
    share = changed.bytes_in / baseline.bytes_in
    print(f"after {CHANGED} changed: {share:.1%} of the bytes of moving every file "
          f"({LESSON_SECONDS} s lessons, kiosk variant)")
    return [Figure(f"bytes moved after {CHANGED} of {LESSONS} lessons changed / every file",
                   f"{share:.1%} ({changed.bytes_in / 1e6:.1f} of {baseline.bytes_in / 1e6:.1f} MB)")]


def _events_report(pushed: float, bulk: float, held: int) -> list[Figure]:
    print(f"\n{'events up':34s} {'events':>8s} {'seconds':>8s} {'events/s':>9s} {'ratio':>6s}")
    print(f"{'kiosk sync over HTTP, batches':34s} {EVENTS:8,d} {pushed:8.2f} "
          f"{EVENTS / pushed:9,.0f} {pushed / bulk:6.2f}")
    print(f"{'baseline: one bulk INSERT':34s} {EVENTS:8,d} {bulk:8.2f} {EVENTS / bulk:9,.0f} "
          f"{1:6.2f}")
    verdict = "none lost, none twice" if held == EVENTS else "LOST OR DOUBLED"
    print(f"events on the server: {held:,d} of {EVENTS:,d} ({verdict})")
    return [Figure("events up over HTTP", f"{EVENTS / pushed:,.0f}/s"),
            Figure("events up, HTTP time / bulk INSERT time (baseline)",
                   f"{pushed / bulk:.2f}x ({EVENTS / bulk:,.0f}/s bulk)"),
            Figure(f"events on the server after pushing {EVENTS:,}", f"{held:,}",
                   f"{EVENTS:,} (none lost, none twice)", held == EVENTS)]


if __name__ == "__main__":
    main()
