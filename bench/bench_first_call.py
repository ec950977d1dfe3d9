"""The first call: seconds from answer to the first lesson sample she hears, on the real Asterisk.

Callers are pure dialplan (tests/journey.py): each presses her keys as soon as the question has
announced them, or presses nothing, and records what she hears; the lesson's first sample is
found in that recording. The starter pack's own prompts (espeak-ng placeholders) set the pace.

Four callers: first-time or returning (her language known), with keys or without. The baseline,
in the same run, is the same line with a first-time caller's lesson at once turned off (menu
first: language, then the menu, then a lesson), which is how the line worked before.

Run: ``.venv/bin/python -m bench.bench_first_call`` (root: it starts the test Asterisk in its
chroot). ``PALLAY_BENCH_REPEAT=3`` callers per row (at once).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from audio_lessons import config, listeners, starter, store
from audio_lessons.menu import Caller
from audio_lessons.synth import Pyttsx3Synthesizer
from bench import Figure
from bench.asterisk import bench_asterisk
from ivr.line import LessonLine
from tests import journey
from tests.asterisk import (
    AgiTestServer,
    Ami,
    start,
    stop,
)

REPEAT = int(os.environ.get("PALLAY_BENCH_REPEAT", "3"))
# (row, first-time?, keys with the lesson at once, keys with menu first, seconds she holds on)
ROWS = [
    ("first-time caller, presses each key when announced", True, "1", "11", 40),
    ("first-time caller, presses nothing", True, "", "", 70),
    ("returning caller, presses the lesson's key", False, "1", "1", 50),
    ("returning caller, presses nothing", False, "", "", 200),
]


def build_library(root: Path) -> config.Settings:
    settings = config.load(root / "data", environ={})
    db = store.connect(settings.db_path)
    listeners.load_or_create_secret(settings.secret_path)
    starter.install(db, settings, Pyttsx3Synthesizer(settings.voice, settings.cache_dir))
    db.conn.close()
    return settings


def run_row(ami, ast, settings, secret, first_time: bool, keys: str, hold: float,
            serial: int) -> tuple[list[float | None], int]:
    """REPEAT callers of one kind at once; seconds from answer to the lesson, per caller."""
    numbers = [f"5193{serial:03d}{i:04d}" for i in range(REPEAT)]
    caller = Caller(first_time=True) if first_time else Caller(language="es")
    if not first_time:
        db = store.connect(settings.db_path)
        for number in numbers:
            listeners.remember(db, listeners.pseudonym(secret, number), language="es")
        db.conn.close()
    plan = journey.plan(settings, caller, keys)
    recs = [journey.call(ami, ast, number, plan, hold) for number in numbers]
    with ThreadPoolExecutor(len(recs)) as pool:
        return list(pool.map(lambda rec: journey.lesson_heard_at(ami, ast, rec, plan, hold + 60),
                             recs)), len(plan.presses)


def summary(times: list[float | None]) -> str:
    heard = sorted(t for t in times if t is not None)
    if not heard:
        return "never"
    missed = f", {len(times) - len(heard)} never" if len(heard) < len(times) else ""
    return f"{statistics.median(heard):.1f} s ({heard[0]:.1f}-{heard[-1]:.1f}){missed}"


def main() -> list[Figure]:
    ast = bench_asterisk()
    root = Path(tempfile.mkdtemp(prefix="pallay-bench-first-"))
    agi = AgiTestServer(ast.agi_port)
    try:
        settings = build_library(root)
        secret = listeners.load_or_create_secret(settings.secret_path)
        menu_first = dataclasses.replace(
            settings, menu=dataclasses.replace(settings.menu, first_lesson_at_once=False))
        start(ast)
        ast.share(root)
        ast.add_dialplan("journey", journey.CONTEXT)
        agi.start()
        ami = Ami(ast.ami_port, "pallay-test", ast.ami_secret)
        results = {}
        for label, variant in (("now", settings), ("menu first", menu_first)):
            agi.routes["lessons"] = LessonLine(variant, secret)
            with ThreadPoolExecutor(len(ROWS)) as pool:
                futures = [pool.submit(run_row, ami, ast, variant, secret, first,
                                       now if label == "now" else before, hold, serial)
                           for serial, (_, first, now, before, hold) in
                           enumerate(ROWS, start=10 if label == "now" else 50)
                           if label == "now" or first]
                results[label] = [f.result() for f in futures]
        ami.close()
        return report(results)
    finally:
        agi.close()
        stop(ast)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def report(results) -> list[Figure]:
    print(f"\nanswer -> first lesson sample heard, median (min-max) of {REPEAT} callers at once")
    print("| caller | presses | pallay now | menu first (before) | now / before |")
    print("|---|---|---|---|---|")
    before = results["menu first"]
    for i, ((row, first, *_), (times, presses)) in enumerate(zip(ROWS, results["now"])):
        old, old_presses = before[i] if first else (times, presses)
        heard = [t for t in times if t is not None]
        old_heard = [t for t in old if t is not None]
        ratio = (f"{statistics.median(heard) / statistics.median(old_heard):.2f}x"
                 if heard and old_heard else "-")
        print(f"| {row} | {presses} (before {old_presses}) | {summary(times)} | "
              f"{summary(old)} | {ratio} |")
    print("targets: first-time with keys <= 15 s in at most 2 presses; without keys <= 30 s")
    figures = []
    for (times, _), label, target in zip(results["now"][:2], ("with keys", "no keys"), (15, 30)):
        heard = [t for t in times if t is not None]
        worst = max(heard) if len(heard) == len(times) else None
        figures.append(Figure(f"first-time caller {label}: answer -> lesson heard (worst)",
                              f"{worst:.1f} s" if worst else "never", f"<= {target} s",
                              worst is not None and worst <= target))
    return figures


if __name__ == "__main__":
    main()
