"""``Server-Timing: app;dur=<ms>`` on every answer: what the panel itself spent (bench_admin reads it)."""

from __future__ import annotations

import time

from flask import Flask, g


def _start() -> None:
    g.started = time.perf_counter()


def _stamp(response):
    started = g.get("started")
    if started is not None:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start)  # registered first: it also times the log-in and CSRF checks
    app.after_request(_stamp)
