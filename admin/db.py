"""The store connection of one request (``get_db()`` on ``g``), closed when the request ends."""

from __future__ import annotations

import sqlite_utils
from flask import Flask, current_app, g

from audio_lessons import store
from audio_lessons.config import Settings
from audio_lessons.synth import Synthesizer


def settings() -> Settings:
    return current_app.config["PALLAY_SETTINGS"]


def synthesizer() -> Synthesizer:
    return current_app.config["PALLAY_SYNTHESIZER"]


def get_db() -> sqlite_utils.Database:
    if "db" not in g:
        g.db = store.connect(settings().db_path)
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
