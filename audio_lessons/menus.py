"""Menus as leaders shape them: the tree a caller walks, sub-menus with their spoken title, moves.

The rules (at most 4 levels, keys 1-9, 8 and 9 reserved in the main menu) are ``catalog``'s; this
module adds what a person needs around them: a new menu gets a synthetic title prompt
``title:menu:<slug>`` at once (like ``pallay init``), and a full menu says what to do about it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import sqlite_utils

from audio_lessons import catalog, prompts, store
from audio_lessons.config import Settings
from audio_lessons.errors import CatalogError
from audio_lessons.synth import Synthesizer

log = logging.getLogger(__name__)

MORE_LESSONS = "más lecciones"


@dataclass(frozen=True)
class Item:
    """One option a caller hears: ``Para <title>, marque <key>``."""

    key: str
    kind: str  # "lesson" or "menu"
    slug: str
    title: str
    prompt: str  # the title prompt's name
    lesson_id: int | None = None
    published: bool = True
    playable: bool = True  # a lesson with a recording (and published) is heard by callers


@dataclass(frozen=True)
class Level:
    """A menu as a caller hears it, with its sub-menus below."""

    slug: str
    title: str
    depth: int
    prompt: str  # its opening prompt: "menu" for the main menu, else "title:menu:<slug>"
    items: tuple[Item, ...]
    children: tuple[Level, ...] = field(default=())
    unlisted: tuple[Item, ...] = ()  # lessons in this menu without a key (nobody can reach them)

    @property
    def free_keys(self) -> list[str]:
        return free_keys(self.slug, {i.key for i in self.items})

    @property
    def full(self) -> bool:
        return not self.free_keys


def free_keys(menu: str, used: set[str]) -> list[str]:
    allowed = [str(k) for k in range(1, catalog.MAX_ITEMS + 1)
               if not (menu == catalog.ROOT_MENU and str(k) in catalog.RESERVED_ROOT_KEYS)]
    return [k for k in allowed if k not in used]


def tree(db: sqlite_utils.Database) -> Level:
    """The whole menu tree from the main menu down, every level's items sorted by key."""
    menus = {row[0]: row for row in db.execute(
        "SELECT slug, title, parent, key FROM menus ORDER BY position, slug")}
    lessons = catalog.list_lessons(db)
    return _level(catalog.ROOT_MENU, menus, lessons, 1)


def _level(slug: str, menus: dict, lessons: list[catalog.Lesson], depth: int) -> Level:
    items = [Item(row[3], "menu", row[0], row[1], f"title:menu:{row[0]}")
             for row in menus.values() if row[2] == slug and row[3]]
    here = [le for le in lessons if le.menu == slug]
    items += [_lesson_item(le) for le in here if le.key]
    children = tuple(_level(row[0], menus, lessons, depth + 1)
                     for row in menus.values() if row[2] == slug)
    prompt = "menu" if slug == catalog.ROOT_MENU else f"title:menu:{slug}"
    return Level(slug, menus[slug][1], depth, prompt, tuple(sorted(items, key=lambda i: i.key)),
                 children, tuple(_lesson_item(le) for le in here if not le.key))


def _lesson_item(le: catalog.Lesson) -> Item:
    return Item(le.key or "", "lesson", le.slug, le.title, f"title:{le.slug}", le.id, le.published,
                le.published and bool(le.recordings))


def levels(root: Level) -> list[Level]:
    """Every level of the tree, depth first (for a select list of menus)."""
    found = [root]
    for child in root.children:
        found += levels(child)
    return found


def find(root: Level, slug: str) -> Level:
    for level in levels(root):
        if level.slug == slug:
            return level
    raise CatalogError(f"No existe el menú «{slug}».")


@dataclass(frozen=True)
class Advice:
    """What to do about a full menu: the Spanish text and the one action that fixes it."""

    text: str
    use_menu: str | None = None  # a sub-menu of it that still has room: put the lesson there
    use_title: str = ""
    gather_key: str | None = None  # else: a new sub-menu takes this lesson's key and the lesson


def full_menu_advice(db: sqlite_utils.Database, menu: str) -> Advice | None:
    """What to do when ``menu`` has no free key (None while it has one)."""
    level = find(tree(db), menu)
    if not level.full:
        return None
    roomy = [child for child in level.children if not child.full]
    if roomy:
        return Advice(f"El menú «{level.title}» está lleno ({len(level.items)} opciones). Ponga la "
                      f"lección en su submenú «{roomy[0].title}», que tiene lugar.",
                      use_menu=roomy[0].slug, use_title=roomy[0].title)
    lessons = [i for i in level.items if i.kind == "lesson"]
    if level.depth >= catalog.MAX_DEPTH or not lessons:
        return Advice(f"El menú «{level.title}» está lleno y no puede tener más submenús: mueva "
                      "una lección a otro menú o borre una.")
    last = lessons[-1]
    return Advice(f"El menú «{level.title}» está lleno ({len(level.items)} opciones). Cree el "
                  f"submenú «{MORE_LESSONS}» en la tecla {last.key}: «{last.title}» pasa dentro y "
                  "queda espacio para 8 lecciones más.", gather_key=last.key)


def add_submenu(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer, *,
                title: str, parent: str = catalog.ROOT_MENU, key: str | None = None,
                gather: tuple[str, ...] = (), slug: str | None = None) -> str:
    """Create a sub-menu and its synthetic title prompt; returns the new menu's slug.

    With a full ``parent`` and no ``gather``, the lesson on its last key moves into the new menu.
    """
    slug = slug or free_slug(db, title)
    if not gather and key is None:
        advice = full_menu_advice(db, parent)
        if advice is not None and advice.gather_key:
            gather = (advice.gather_key,)
    prompt = prompts.synthesise(db, settings, synthesizer, f"title:menu:{slug}", "es", title)
    catalog.add_menu(db, slug, title, parent=parent, key=key, gather=gather)
    log.info("menu %s added under %s (prompt %s)", slug, parent, prompt)
    return slug


def free_slug(db: sqlite_utils.Database, title: str) -> str:
    base = catalog.slugify(title)[:55]
    slug, n = base, 1
    while db.execute("SELECT 1 FROM menus WHERE slug = ?", [slug]).fetchone():
        n += 1
        slug = f"{base}-{n}"
    return slug


def move_lesson(db: sqlite_utils.Database, lesson: int | str, menu: str,
                key: str | None = None) -> catalog.Lesson:
    """Put a lesson in ``menu`` under ``key`` (or the lowest free key)."""
    found = catalog.get_lesson(db, lesson)
    return catalog.update_lesson(db, found.id, menu=menu, key=key)


def swap_keys(db: sqlite_utils.Database, menu: str, key_a: str, key_b: str) -> None:
    """Exchange the options on two keys of a menu (reordering what a caller hears)."""
    level = find(tree(db), menu)
    by_key = {i.key: i for i in level.items}
    if key_a not in by_key and key_b not in by_key:
        raise CatalogError("No hay nada en esas teclas.")
    if key_b in by_key and key_a not in by_key:
        key_a, key_b = key_b, key_a
    a, b = by_key[key_a], by_key.get(key_b)
    free = [k for k in level.free_keys if k not in (key_a, key_b)]
    # Through a free key (or no key at all), as keys are unique within a menu.
    parking = free[0] if free else None
    _set_key(db, a, menu, parking)
    if b is not None:
        _set_key(db, b, menu, key_a)
    _set_key(db, a, menu, key_b)


def _set_key(db: sqlite_utils.Database, item: Item, menu: str, key: str | None) -> None:
    if item.kind == "lesson":
        if key is None:
            with store.write(db):
                db.execute("UPDATE lessons SET key = NULL WHERE id = ?", [item.lesson_id])
        else:
            catalog.update_lesson(db, item.lesson_id, menu=menu, key=key)
    else:
        with store.write(db):
            db.execute("UPDATE menus SET key = ? WHERE slug = ?", [key, item.slug])


def rename(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer, slug: str,
           title: str) -> None:
    """A new title for a sub-menu; its synthetic title prompt is spoken again (a recorded one stays)."""
    if slug == catalog.ROOT_MENU:
        raise CatalogError("El título del menú principal es el aviso «menu»: cámbielo en Avisos.")
    title = " ".join((title or "").split())
    if not title:
        raise CatalogError("El título no puede estar vacío.")
    find(tree(db), slug)
    with store.write(db):
        db.execute("UPDATE menus SET title = ? WHERE slug = ?", [title, slug])
    prompts.synthesise(db, settings, synthesizer, f"title:menu:{slug}", "es", title,
                       keep_recorded=True)


def delete(db: sqlite_utils.Database, slug: str) -> None:
    """Remove an empty sub-menu and its title prompts."""
    catalog.delete_menu(db, slug)
    with store.write(db):
        db.execute("DELETE FROM prompts WHERE name = ?", [f"title:menu:{slug}"])
