"""Run every benchmark in turn: ``python -m bench`` (each module is bench/bench_*.py with a main())."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback

import bench


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            module.main()
        except Exception:  # noqa: BLE001 - one broken bench must not hide the others' figures
            failed.append(name)
            traceback.print_exc()
        print(f"=== bench.{name}: {time.perf_counter() - started:.0f} s ===", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
