"""Turn submitted forms into the keyword arguments of the core functions (no rules here)."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from audio_lessons import catalog


def _text(form: MultiDict, name: str) -> str:
    return (form.get(name) or "").strip()


def lesson_fields(form: MultiDict) -> dict:
    return {"title": _text(form, "title"), "topic": _text(form, "topic"),
            "menu": _text(form, "menu") or catalog.ROOT_MENU, "key": _text(form, "key") or None,
            "keywords": _text(form, "keywords"), "published": bool(form.get("published"))}


def edit_fields(form: MultiDict) -> dict:
    fields = {"title": _text(form, "title"), "topic": _text(form, "topic"),
              "keywords": _text(form, "keywords"), "published": bool(form.get("published"))}
    if _text(form, "menu"):
        fields["menu"] = _text(form, "menu")
        fields["key"] = _text(form, "key") or None
    return fields

