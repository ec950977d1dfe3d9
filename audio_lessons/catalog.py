"""The catalogue: lessons, their recordings per language, menus and prompts.

Thin functions over the store; every rule a leader can break raises CatalogError with a Spanish message.
``view()`` gives the read-only snapshot the menu engine walks.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import NoReturn

import sqlite_utils

from audio_lessons import labels, store
from audio_lessons.errors import CatalogError

log = logging.getLogger(__name__)

ROOT_MENU = "main"
MAX_ITEMS = 9  # keys 1-9
MAX_DEPTH = 4  # the root menu is level 1
RESERVED_ROOT_KEYS = ("8", "9")  # root menu: 8 leave a message, 9 change language


@dataclass(frozen=True)
class Recording:
    language: str
    media: str  # content hash; files are media/<hash>.phone.wav and media/<hash>.kiosk.wav
    duration_ms: int
    speaker: str
    synthetic: bool


@dataclass(frozen=True)
class Lesson:
    id: int
    slug: str
    title: str
    topic: str
    menu: str
    key: str | None
    keywords: tuple[str, ...]
    position: int
    published: bool
    recordings: dict[str, Recording] = field(default_factory=dict)
    quiz_answer: str | None = None  # "1" (yes) or "2" (no) answers prompt "quiz:<slug>" right

    def recording(self, language: str, fallback: str = "es") -> Recording | None:
        """The recording in ``language``, else in ``fallback`` (Quechua slots in beside Spanish)."""
        return self.recordings.get(language) or self.recordings.get(fallback)


@dataclass(frozen=True)
class Menu:
    slug: str
    title: str
    parent: str | None
    key: str | None


@dataclass(frozen=True)
class CatalogView:
    """What the menu engine needs, read once per call or kiosk session."""

    menus: dict[str, Menu]
    lessons: dict[int, Lesson]  # published lessons with at least one recording
    prompts: dict[tuple[str, str], str]  # (name, language) -> media hash, for prompts that have media

    def items(self, menu: str) -> list[tuple[str, Lesson | Menu]]:
        """(key, lesson or sub-menu) pairs of ``menu``, sorted by key."""
        found: list[tuple[str, Lesson | Menu]] = [
            (m.key, m) for m in self.menus.values() if m.parent == menu and m.key]
        found += [(le.key, le) for le in self.lessons.values() if le.menu == menu and le.key]
        return sorted(found, key=lambda pair: pair[0])

    def ordered_lessons(self) -> list[Lesson]:
        return sorted(self.lessons.values(), key=lambda le: (le.position, le.id))


# --- changing the catalogue -------------------------------------------------------------------------

LESSON_FIELDS = ("slug", "title", "topic", "menu", "key", "keywords", "position", "published")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _fail(message: str) -> NoReturn:
    raise CatalogError(message)


def check_language(db: sqlite_utils.Database, code: str) -> None:
    """Raise CatalogError unless ``code`` is in the languages table."""
    if not db.execute("SELECT 1 FROM languages WHERE code = ?", [code]).fetchone():
        _fail(f"El idioma «{code}» no está configurado.")


def slugify(title: str) -> str:
    """A slug for a title: "Cuídate del sol, compañera" -> "cuidate-del-sol-companera"."""
    plain = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:60].strip("-")
    if not slug:
        return "leccion"
    return f"leccion-{slug}" if slug.isdigit() else slug


def _check_slug(slug: str, what: str) -> None:
    # an all-digit slug would read as an id in get_lesson()
    if not isinstance(slug, str) or not _SLUG.match(slug) or slug.isdigit():
        _fail(f"El identificador de {what} «{slug}» no es válido: use minúsculas sin tildes, "
              "números y guiones (por ejemplo «polvo-y-mascarilla»).")


def _menu_row(db: sqlite_utils.Database, slug: str) -> dict:
    row = db.execute("SELECT slug, title, parent, key FROM menus WHERE slug = ?", [slug]).fetchone()
    if not row:
        _fail(f"No existe el menú «{slug}».")
    return dict(zip(("slug", "title", "parent", "key"), row))


def menu_depth(db: sqlite_utils.Database, slug: str) -> int:
    """Level of a menu: the root menu is 1, its sub-menus 2, and so on."""
    depth, row = 1, _menu_row(db, slug)
    while row["parent"]:
        depth += 1
        row = _menu_row(db, row["parent"])
        if depth > MAX_DEPTH + 1:
            break  # a cycle; never created by these functions, but do not loop forever
    return depth


def _used_keys(db: sqlite_utils.Database, menu: str, *, lesson_id: int | None = None,
               submenu: str | None = None) -> set[str]:
    """Keys taken in ``menu`` by lessons and sub-menus, leaving out the item being changed."""
    keys = {row[0] for row in db.execute(
        "SELECT key FROM lessons WHERE menu = ? AND key IS NOT NULL AND id IS NOT ?", [menu, lesson_id])}
    keys |= {row[0] for row in db.execute(
        "SELECT key FROM menus WHERE parent = ? AND key IS NOT NULL AND slug IS NOT ?",
        [menu, submenu])}
    return keys


def _choose_key(db: sqlite_utils.Database, menu: str, key: str | int | None, **item) -> str:
    """Validate ``key`` for an item of ``menu``, or pick the lowest free one when it is None."""
    allowed = [str(k) for k in range(1, MAX_ITEMS + 1)
               if not (menu == ROOT_MENU and str(k) in RESERVED_ROOT_KEYS)]
    used = _used_keys(db, menu, **item)
    if key is None:
        free = [k for k in allowed if k not in used]
        if not free:
            _fail(f"El menú «{menu}» ya tiene {len(allowed)} opciones, el máximo: cree un submenú "
                  "o mueva una lección.")
        return free[0]
    key = str(key).strip()
    if key not in [str(k) for k in range(1, 10)]:
        _fail(f"La tecla «{key}» no es válida: use un solo número del 1 al 9.")
    if key not in allowed:
        _fail(f"Las teclas {' y '.join(RESERVED_ROOT_KEYS)} del menú principal están reservadas "
              "(8: dejar un mensaje, 9: cambiar de idioma).")
    if key in used:
        _fail(f"La tecla {key} ya está en uso en el menú «{menu}».")
    return key


def _check_keywords(db: sqlite_utils.Database, words: tuple[str, ...], lesson_id: int | None) -> None:
    for other_id, title, raw in db.execute(
            "SELECT id, title, keywords FROM lessons WHERE id IS NOT ?", [lesson_id]):
        clash = set(words) & set(json.loads(raw or "[]"))
        if clash:
            _fail(f"La palabra «{min(clash)}» ya lleva a la lección «{title}»: "
                  "cada palabra debe llevar a una sola lección.")


def add_lesson(db: sqlite_utils.Database, *, slug: str, title: str, topic: str = "",
               menu: str = ROOT_MENU, key: str | int | None = None, keywords=(),
               position: int | None = None, published: bool = True) -> int:
    """Create a lesson in ``menu`` under ``key`` (the lowest free key if None); returns its id."""
    _check_slug(slug, "la lección")
    title, topic = labels.check_title(title), labels.check_topic(topic)
    words = labels.normalise_keywords(keywords)
    with store.write(db):
        _menu_row(db, menu)
        if db.execute("SELECT 1 FROM lessons WHERE slug = ?", [slug]).fetchone():
            _fail(f"Ya existe una lección con el identificador «{slug}».")
        key = _choose_key(db, menu, key, lesson_id=None)
        _check_keywords(db, words, None)
        if position is None:
            position = db.execute("SELECT coalesce(max(position), 0) + 1 FROM lessons").fetchone()[0]
        stamp = store.now()
        cursor = db.conn.execute(
            "INSERT INTO lessons (slug, title, topic, menu, key, keywords, position, published, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [slug, title, topic, menu, key, json.dumps(words, ensure_ascii=False),
             int(position), int(bool(published)), stamp, stamp])
    log.info("lesson %s added in menu %s under key %s", slug, menu, key)
    return cursor.lastrowid


def update_lesson(db: sqlite_utils.Database, lesson_id: int, **fields) -> Lesson:
    """Change some of a lesson's LESSON_FIELDS; moving it to another menu keeps its key if free."""
    unknown = set(fields) - set(LESSON_FIELDS)
    if unknown:
        _fail(f"No se puede cambiar «{min(unknown)}» de una lección.")
    with store.write(db):
        current = get_lesson(db, lesson_id)
        row = {name: getattr(current, name) for name in LESSON_FIELDS}
        row.update(fields)
        if row["slug"] != current.slug:
            _check_slug(row["slug"], "la lección")
            if db.execute("SELECT 1 FROM lessons WHERE slug = ? AND id <> ?",
                          [row["slug"], current.id]).fetchone():
                _fail(f"Ya existe una lección con el identificador «{row['slug']}».")
        row["title"], row["topic"] = labels.check_title(row["title"]), labels.check_topic(row["topic"])
        _menu_row(db, row["menu"])
        if row["menu"] != current.menu and "key" not in fields:
            taken = _used_keys(db, row["menu"], lesson_id=current.id)
            if row["key"] in taken or (row["menu"] == ROOT_MENU and row["key"] in RESERVED_ROOT_KEYS):
                row["key"] = None  # its old key is taken there: the lowest free one
        if "menu" in fields or "key" in fields:
            row["key"] = _choose_key(db, row["menu"], row["key"], lesson_id=current.id)
        row["keywords"] = labels.normalise_keywords(row["keywords"])
        _check_keywords(db, row["keywords"], current.id)
        db.conn.execute(
            "UPDATE lessons SET slug = ?, title = ?, topic = ?, menu = ?, key = ?, keywords = ?, "
            "position = ?, published = ?, updated_at = ? WHERE id = ?",
            [row["slug"], row["title"], row["topic"], row["menu"], row["key"],
             json.dumps(row["keywords"], ensure_ascii=False), int(row["position"]),
             int(bool(row["published"])), store.now(), current.id])
    return get_lesson(db, current.id)


def delete_lesson(db: sqlite_utils.Database, lesson_id: int) -> None:
    """Remove a lesson, its recordings and listeners' progress; listening history stays for stats."""
    with store.write(db):
        lesson = get_lesson(db, lesson_id)
        for table in ("recordings", "progress"):
            db.conn.execute(f"DELETE FROM {table} WHERE lesson_id = ?", [lesson.id])
        db.conn.execute("DELETE FROM lessons WHERE id = ?", [lesson.id])
    log.info("lesson %s deleted", lesson.slug)


def _check_media(db: sqlite_utils.Database, media_hash: str) -> None:
    if not db.execute("SELECT 1 FROM media WHERE hash = ?", [media_hash]).fetchone():
        _fail("El audio no está registrado: súbalo de nuevo.")


def set_recording(db: sqlite_utils.Database, lesson_id: int, language: str, media_hash: str,
                  speaker: str = "", synthetic: bool = False, script: str = "") -> None:
    """Make ``media_hash`` the lesson's recording in ``language``, replacing the current one."""
    speaker = labels.check_speaker(speaker)
    with store.write(db):
        lesson = get_lesson(db, lesson_id)
        check_language(db, language)
        _check_media(db, media_hash)
        db.conn.execute(
            "INSERT OR REPLACE INTO recordings (lesson_id, language, media, speaker, synthetic, "
            "script, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [lesson.id, language, media_hash, speaker, int(synthetic), script, store.now()])
    log.info("lesson %s: %s recording is now %s", lesson.slug, language, media_hash)


def set_prompt(db: sqlite_utils.Database, name: str, language: str, media_hash: str,
               text: str = "", synthetic: bool = False) -> None:
    """Make ``media_hash`` the prompt ``name`` in ``language`` (recorded or synthesised)."""
    if not name or not re.match(r"^[a-z0-9_.:-]+$", name):  # e.g. "digit:4", "title:polvo"
        _fail(f"El nombre de aviso «{name}» no es válido.")
    with store.write(db):
        check_language(db, language)
        _check_media(db, media_hash)
        db.conn.execute(
            "INSERT OR REPLACE INTO prompts (name, language, text, media, synthetic, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)", [name, language, text, media_hash, int(synthetic),
                                          store.now()])


def add_menu(db: sqlite_utils.Database, slug: str, title: str, parent: str = ROOT_MENU,
             key: str | int | None = None, gather: tuple[str, ...] = ()) -> str:
    """Create a sub-menu of ``parent`` under ``key`` (the lowest free key if None); returns the key.

    ``gather``: keys of lessons of ``parent`` that move into the new sub-menu (as its keys 1, 2...),
    so a full menu can grow: its last lesson's key becomes the sub-menu "more lessons".
    """
    _check_slug(slug, "el menú")
    title = labels.check_title(title)
    with store.write(db):
        _menu_row(db, parent)
        if db.execute("SELECT 1 FROM menus WHERE slug = ?", [slug]).fetchone():
            _fail(f"Ya existe un menú con el identificador «{slug}».")
        if menu_depth(db, parent) >= MAX_DEPTH:
            _fail(f"Un menú no puede tener más de {MAX_DEPTH} niveles: "
                  f"«{parent}» ya está en el último nivel.")
        moving = _gather(db, parent, gather)
        key = _choose_key(db, parent, key if key is not None or not gather else gather[0],
                          submenu=None)
        position = db.execute("SELECT coalesce(max(position), 0) + 1 FROM menus").fetchone()[0]
        db.conn.execute("INSERT INTO menus (slug, title, parent, key, position) VALUES (?, ?, ?, ?, ?)",
                        [slug, title, parent, key, position])
        for n, lesson_id in enumerate(moving, start=1):
            db.conn.execute("UPDATE lessons SET menu = ?, key = ?, updated_at = ? WHERE id = ?",
                            [slug, str(n), store.now(), lesson_id])
    return key


def _gather(db: sqlite_utils.Database, menu: str, keys: tuple[str, ...]) -> list[int]:
    """Ids of the lessons of ``menu`` on ``keys``, their keys freed (inside the caller's write)."""
    ids = []
    for key in keys:
        row = db.execute("SELECT id FROM lessons WHERE menu = ? AND key = ?",
                         [menu, str(key)]).fetchone()
        if not row:
            _fail(f"No hay ninguna lección en la tecla {key} del menú «{menu}».")
        ids.append(row[0])
    if ids:
        db.conn.execute(f"UPDATE lessons SET key = NULL WHERE id IN ({', '.join('?' * len(ids))})",
                        ids)
    return ids


def delete_menu(db: sqlite_utils.Database, slug: str) -> None:
    """Remove an empty sub-menu (the root menu stays)."""
    if slug == ROOT_MENU:
        _fail("El menú principal no se puede borrar.")
    with store.write(db):
        _menu_row(db, slug)
        if _used_keys(db, slug) or db.execute("SELECT 1 FROM lessons WHERE menu = ?",
                                              [slug]).fetchone():
            _fail(f"El menú «{slug}» no está vacío: mueva o borre antes sus opciones.")
        db.conn.execute("DELETE FROM menus WHERE slug = ?", [slug])


# --- reading the catalogue --------------------------------------------------------------------------

_LESSON_COLUMNS = "id, slug, title, topic, menu, key, keywords, position, published, quiz_answer"


def _recordings(db: sqlite_utils.Database, lesson_ids: list[int] | None = None
                ) -> dict[int, dict[str, Recording]]:
    sql = ("SELECT r.lesson_id, r.language, r.media, m.duration_ms, r.speaker, r.synthetic "
           "FROM recordings r JOIN media m ON m.hash = r.media")
    args: list = []
    if lesson_ids is not None:
        sql += f" WHERE r.lesson_id IN ({', '.join('?' * len(lesson_ids))})"
        args = lesson_ids
    found: dict[int, dict[str, Recording]] = {}
    for lesson_id, language, media, duration, speaker, synthetic in db.execute(sql, args):
        found.setdefault(lesson_id, {})[language] = Recording(
            language, media, int(duration or 0), speaker or "", bool(synthetic))
    return found


def _lesson(row, recordings: dict[str, Recording]) -> Lesson:
    lesson_id, slug, title, topic, menu, key, keywords, position, published, quiz = row
    return Lesson(lesson_id, slug, title, topic or "", menu, key,
                  tuple(json.loads(keywords or "[]")), position or 0, bool(published),
                  dict(recordings), quiz)


def set_quiz(db: sqlite_utils.Database, lesson_id: int, answer: str | None) -> None:
    """Give a lesson a yes/no quiz question (its prompt is ``quiz:<slug>``), or remove it."""
    if answer not in ("1", "2", None):
        _fail("La respuesta de la pregunta debe ser 1 (sí) o 2 (no).")
    with store.write(db):
        get_lesson(db, lesson_id)
        db.conn.execute("UPDATE lessons SET quiz_answer = ?, updated_at = ? WHERE id = ?",
                        [answer, store.now(), lesson_id])


def list_lessons(db: sqlite_utils.Database, include_unpublished: bool = True) -> list[Lesson]:
    """Every lesson with its recordings, in catalogue order."""
    where = "" if include_unpublished else "WHERE published = 1"
    rows = db.execute(f"SELECT {_LESSON_COLUMNS} FROM lessons {where} ORDER BY position, id")
    recordings = _recordings(db)
    return [_lesson(row, recordings.get(row[0], {})) for row in rows]


def get_lesson(db: sqlite_utils.Database, id_or_slug: int | str) -> Lesson:
    """One lesson by id or slug; CatalogError if there is none."""
    column = "id" if isinstance(id_or_slug, int) or str(id_or_slug).isdigit() else "slug"
    row = db.execute(f"SELECT {_LESSON_COLUMNS} FROM lessons WHERE {column} = ?",
                     [id_or_slug]).fetchone()
    if not row:
        _fail(f"No existe la lección «{id_or_slug}».")
    return _lesson(row, _recordings(db, [row[0]]).get(row[0], {}))


def view(db: sqlite_utils.Database) -> CatalogView:
    """The snapshot the menu engine walks: published lessons that have a recording, menus, prompts."""
    menus = {slug: Menu(slug, title, parent, key) for slug, title, parent, key in db.execute(
        "SELECT slug, title, parent, key FROM menus ORDER BY position, slug")}
    lessons = {le.id: le for le in list_lessons(db, include_unpublished=False) if le.recordings}
    prompts = {(name, language): media for name, language, media in db.execute(
        "SELECT p.name, p.language, p.media FROM prompts p JOIN media m ON m.hash = p.media")}
    return CatalogView(menus=menus, lessons=lessons, prompts=prompts)


def languages(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    """(code, name) of every configured language, in menu order."""
    return [tuple(row) for row in db.execute("SELECT code, name FROM languages ORDER BY position")]


def prompt_media(db: sqlite_utils.Database) -> list[tuple[str, str, str]]:
    """(name, language, media hash) of every prompt that has audio."""
    return [tuple(row) for row in db.execute(
        "SELECT p.name, p.language, p.media FROM prompts p JOIN media m ON m.hash = p.media")]
