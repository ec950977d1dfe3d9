"""The Spanish admin panel (Flask): an app factory, one blueprint per area, thin views on the core.

``create_app(settings)`` builds the same app for the tests and for ``pallay serve`` (waitress).
Every page needs a log-in; every POST needs the session's CSRF token; roles nest (viewer < editor <
admin). Nothing is loaded from the internet: CSS, JS and charts are served from ``static/``.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask

from audio_lessons import config, listeners
from audio_lessons.config import Settings
from audio_lessons.synth import Pyttsx3Synthesizer, Synthesizer

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, test_config: dict | None = None,
               synthesizer: Synthesizer | None = None) -> Flask:
    """The panel for ``settings`` (default: loaded as the CLI does); ``test_config`` overrides."""
    settings = settings or config.load()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(settings.data_dir.resolve()),
                instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=listeners.load_or_create_secret(settings.data_dir / "panel.key"),
        MAX_CONTENT_LENGTH=settings.admin.max_upload_mb * 1024 * 1024,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.admin.session_minutes),
        SESSION_COOKIE_NAME="pallay_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # works over plain HTTP, unlike SameSite=None
        SESSION_COOKIE_SECURE=settings.admin.secure_cookies,
        PALLAY_SETTINGS=settings,
        PALLAY_SYNTHESIZER=synthesizer or Pyttsx3Synthesizer(settings.voice, settings.cache_dir),
    )
    if test_config:
        app.config.update(test_config)
    from admin import (
        auth,
        dashboard,
        db,
        errors,
        i18n,
        lessons,
        line,
        menus,
        messages,
        prompts,
        simulator,
        staff,
        sync,
        timing,
    )
    timing.init_app(app)
    db.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    for module in (auth, lessons, prompts, menus, messages, line, simulator, dashboard, staff,
                   sync):
        app.register_blueprint(module.bp)
    app.add_url_rule("/", "index", auth.index)
    return app
