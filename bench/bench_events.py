"""Listen-event inserts per second: three writer processes at once against one, same run.

Two ways of writing: batches through ``record_many`` (how kiosks sync) and one event per
transaction through ``record_listen`` (how the phone line writes as calls go). Every insert fires
the statistics triggers. Each scenario starts from an empty database; after it, every event must
be in the table and in the rollups (none lost). Target: 5,000 events/s in total with three writers.
Example: .venv/bin/python -m bench.bench_events
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from pathlib import Path

from audio_lessons import events, stats, store
from bench import Figure

TARGET_PER_S = 5_000
BATCH = 500
SCENARIOS = [  # (label, writers, events per writer, batched)
    ("record_many, batches of 500", 3, 40_000, True),
    ("record_many, batches of 500", 1, 120_000, True),
    ("record_listen, 1 per transaction", 3, 15_000, False),
    ("record_listen, 1 per transaction", 1, 45_000, False),
]


def _event(worker: int, i: int) -> events.ListenEvent:
    day = 1 + i % 28
    return events.ListenEvent(
        events.new_id(), "kiosk" if worker % 2 else "phone", f"device-{worker}",
        f"{(worker * 7919 + i) % 5000:032x}", 1 + i % 40, "qu", "key",
        f"2026-03-{day:02d}T{8 + i % 12:02d}:{i % 60:02d}:00Z", 60.0, (i * 997) % 150_000, 150_000)


def _write(db_path: str, worker: int, count: int, batched: bool, barrier, results) -> None:
    db = store.connect(db_path)
    todo = [_event(worker, i) for i in range(count)]
    barrier.wait(timeout=120)
    started = time.time()
    if batched:
        for at in range(0, count, BATCH):
            events.record_many(db, todo[at:at + BATCH])
    else:
        for event in todo:
            events.record_listen(db, event)
    results.put((started, time.time()))
    db.conn.close()


def run(writers: int, per_writer: int, batched: bool) -> tuple[float, int, int]:
    """(seconds from the common start to the last commit, events stored, events in the rollups)."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="pallay-bench-events-") as tmp:
        db_path = str(Path(tmp) / "pallay.db")
        store.connect(db_path).conn.close()
        barrier, results = ctx.Barrier(writers), ctx.Queue()
        procs = [ctx.Process(target=_write, args=(db_path, w, per_writer, batched, barrier, results))
                 for w in range(writers)]
        for p in procs:
            p.start()
        spans = [results.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"writer exited with {p.exitcode}")
        db = store.connect(db_path)
        stored = db.execute("SELECT count(*) FROM listen_events").fetchone()[0]
        rolled = stats.totals(db).listens
        db.conn.close()
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    return seconds, stored, rolled


def main() -> list[Figure]:
    print(f"{'mode':34s} {'writers':>7s} {'events':>8s} {'seconds':>8s} {'events/s':>9s} "
          f"{'lost':>5s}")
    figures, rates = [], {}
    for label, writers, per_writer, batched in SCENARIOS:
        seconds, stored, rolled = run(writers, per_writer, batched)
        total = writers * per_writer
        lost = total - min(stored, rolled)
        rates[label, writers] = total / seconds
        print(f"{label:34s} {writers:7d} {total:8,d} {seconds:8.2f} {total / seconds:9,.0f} "
              f"{lost:5d}")
        if writers == 3:
            figures.append(Figure(f"{label.split(',')[0]}, 3 writers", f"{total / seconds:,.0f}/s",
                                  f">= {TARGET_PER_S:,}/s, 0 lost",
                                  total / seconds >= TARGET_PER_S and lost == 0))
    print(f"target: {TARGET_PER_S:,} events/s in total with 3 writers, none lost "
          "(the single writer is the baseline)")
    for label, _, _, _ in SCENARIOS[::2]:
        figures.append(Figure(f"{label.split(',')[0]}, 3 writers / 1 writer",
                              f"{rates[label, 3] / rates[label, 1]:.2f}x"))
    return figures


if __name__ == "__main__":
    main()
