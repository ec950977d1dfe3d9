"""Spanish by default, English on request: a small message table instead of gettext catalogues.

Templates write Spanish text inside ``_()``; ``translations/en.toml`` maps it to English. A phrase
missing there shows in Spanish (tests check every template phrase has an English entry). Why no
Flask-Babel: compiled .mo catalogues need a build step for ~200 phrases that a TOML table does not.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from flask import Blueprint, Flask, current_app, redirect, request, session, url_for

LANGUAGES = {"es": "Español", "en": "English"}
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
bp = Blueprint("i18n", __name__)


@functools.cache
def table(language: str) -> dict[str, str]:
    path = TRANSLATIONS / f"{language}.toml"
    if not path.exists():
        return {}
    return tomllib.loads(path.read_text(encoding="utf-8"))


def current_language() -> str:
    chosen = session.get("lang") or current_app.config["PALLAY_SETTINGS"].admin.language
    return chosen if chosen in LANGUAGES else "es"


def gettext(text: str, **values) -> str:
    """``text`` (Spanish) in the reader's language, with ``{name}`` fields filled in."""
    language = current_language()
    translated = text if language == "es" else table(language).get(text, text)
    return translated.format(**values) if values else translated


@bp.route("/idioma/<code>")
def choose(code: str):
    if code in LANGUAGES:
        session["lang"] = code
    target = request.referrer or ""
    host = request.host_url
    return redirect(target if target.startswith(host) else url_for("index"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.update(_=gettext, LANGUAGES=LANGUAGES, current_language=current_language)
