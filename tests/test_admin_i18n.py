"""Every phrase the panel shows in Spanish has its English entry (the panel falls back silently)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from audio_lessons import live, outgoing, reports, stats, store
from tests.conftest import REPO

ADMIN = REPO / "admin"
TEMPLATE_PHRASE = re.compile(r"""_\(\s*(["'])((?:(?!\1).)+)\1""", re.DOTALL)


def _python_phrases(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_"
                and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(node.args[0].value)
    return found


def phrases() -> set[str]:
    found = {m.group(2) for p in ADMIN.rglob("*.html") for m in TEMPLATE_PHRASE.finditer(
        p.read_text())}
    for path in ADMIN.glob("*.py"):
        found |= _python_phrases(path)
    return found


def test_every_phrase_of_the_panel_has_an_english_translation(tmp_path):
    english = tomllib.loads((ADMIN / "translations" / "en.toml").read_text())
    db = store.connect(tmp_path / "pallay.db")
    for name in reports.TABLES:  # table titles and column names are shown through _() too
        table = reports.table(db, name, stats.filters())
        assert table.title in english and all(c in english for c in table.columns), name
    from admin import prompts
    shown = {*live.KIND.values(), *outgoing.KIND.values(), *outgoing.STATUS.values(),
             *prompts.GROUPS.values(), prompts.OTHERS}
    missing = sorted(p for p in phrases() | shown if p not in english)
    assert not missing, f"add to admin/translations/en.toml: {missing}"
    assert len(phrases()) > 100  # the extraction itself works
