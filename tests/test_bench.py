"""`make bench` (python -m bench): every benchmark runs or says in one line why it cannot, and the
run ends with the table of every figure it got."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from bench import Figure, Unavailable
from bench.__main__ import Run, run_one, table
from tests.conftest import REPO


def fake(main):
    return SimpleNamespace(main=main)


def test_benches_that_cannot_run_or_break_do_not_stop_the_others_figures(capsys):
    def missing_model():
        raise SystemExit("needs the PocketSphinx model at /x\nand espeak-ng")  # the old way

    def not_root():
        raise Unavailable("needs root: it runs Asterisk in a chroot")

    def broken():
        raise RuntimeError("writer exited with 1")

    modules = {"bench.bench_a": fake(missing_model), "bench.bench_b": fake(not_root),
               "bench.bench_c": fake(broken),
               "bench.bench_d": fake(lambda: [Figure("queries", "12.0 ms", "< 200 ms", True)]),
               "bench.bench_e": fake(lambda: [Figure("ratio", "1.40x", "<= 1.30x", False),
                                              Figure("speed", "300x real time")])}
    run = Run()
    for name in ("bench_a", "bench_b", "bench_c", "bench_d", "bench_e"):
        run_one(name, run, load=modules.__getitem__)
    printed = capsys.readouterr().out
    assert "bench.bench_a cannot run here: needs the PocketSphinx model at /x / and espeak-ng\n" \
        in printed
    assert [name for name, _ in run.figures] == ["bench_d", "bench_e", "bench_e"]
    lines = table(run).splitlines()
    assert lines[0].split() == ["benchmark", "figure", "value", "target"]
    assert lines[1].split() == ["d", "queries", "12.0", "ms", "<", "200", "ms", "met"]
    assert lines[2].split() == ["e", "ratio", "1.40x", "<=", "1.30x", "MISSED"]
    assert lines[3].split() == ["e", "speed", "300x", "real", "time"]
    assert lines[4:] == ["not run: a: needs the PocketSphinx model at /x / and espeak-ng",
                         "not run: b: needs root: it runs Asterisk in a chroot",
                         "FAILED: c: RuntimeError: writer exited with 1"]


def test_make_bench_without_the_model_says_so_and_still_ends_with_the_table():
    env = {**os.environ, "PALLAY_TEST_SPHINX_MODEL": "/nonexistent/model"}
    done = subprocess.run([sys.executable, "-m", "bench", "speech"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    tail = done.stdout.split("=== every figure of this run")[1].splitlines()
    assert tail[-1] == ("not run: speech: Spanish PocketSphinx model missing at /nonexistent/model:"
                        " `make test` gets it (from MODELS=../shared/models or its official source)")
