"""Benchmarks, each bench/bench_*.py with a ``main()`` that prints its tables and returns its figures.

``python -m bench`` runs them all and ends with one table of every figure it got.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One headline result: what was measured, its value with the unit, and the target it has."""

    name: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target, or nothing to compare


class Unavailable(Exception):
    """This benchmark cannot run on this machine (a model, a program, root): the message says why."""
