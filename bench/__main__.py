"""Run the benchmarks: ``python -m bench [NAME ...]`` (all of bench/bench_*.py by default).

Each one runs, or says in one line why it cannot; a broken one never stops the others, and the run
ends with the table of every figure it got.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import bench
from bench import Figure, Unavailable


@dataclass
class Run:
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    not_run: list[tuple[str, str]] = field(default_factory=list)  # (bench, why)
    failed: list[tuple[str, str]] = field(default_factory=list)


def names(wanted: list[str]) -> list[str]:
    found = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    if not wanted:
        return found
    chosen = [w if w.startswith("bench_") else f"bench_{w}" for w in wanted]
    unknown = [c for c in chosen if c not in found]
    if unknown:
        raise SystemExit(f"no such benchmark: {', '.join(unknown)} (there are: {', '.join(found)})")
    return chosen


def one_line(text: object, limit: int = 240) -> str:
    line = " / ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def run_one(name: str, run: Run, load: Callable = importlib.import_module) -> None:
    """Run bench ``name``; its figures, or why it did not run, or how it failed, go into ``run``."""
    print(f"\n=== bench.{name} ===", flush=True)
    started = time.perf_counter()
    try:
        figures = load(f"bench.{name}").main() or []
    except (Unavailable, SystemExit) as exc:  # SystemExit: a bench that exits with its reason
        why = one_line(exc.code if isinstance(exc, SystemExit) else exc) or "exited"
        run.not_run.append((name, why))
        print(f"bench.{name} cannot run here: {why}", flush=True)
    except Exception as exc:  # noqa: BLE001 - one broken bench must not hide the others' figures
        traceback.print_exc()
        run.failed.append((name, one_line(f"{type(exc).__name__}: {exc}")))
    else:
        run.figures += [(name, f) for f in figures]
    print(f"=== bench.{name}: {time.perf_counter() - started:.0f} s ===", flush=True)


def table(run: Run) -> str:
    """Every figure of the run, then the benchmarks that gave none and why."""
    rows = [("benchmark", "figure", "value", "target", "")]
    rows += [(name.removeprefix("bench_"), f.name, f.value, f.target,
              {True: "met", False: "MISSED", None: ""}[f.met]) for name, f in run.figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + f"  {row[4]}"
             for row in rows]
    lines = [line.rstrip() for line in lines]
    lines += [f"not run: {name.removeprefix('bench_')}: {why}" for name, why in run.not_run]
    lines += [f"FAILED: {name.removeprefix('bench_')}: {why}" for name, why in run.failed]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    run = Run()
    for name in names(sys.argv[1:] if argv is None else argv):
        run_one(name, run)
    print("\n=== every figure of this run (the machine's other load included) ===")
    print(table(run))
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
