"""The catalogue: lessons, their recordings per language, menus and prompts.

Thin functions over the store; every rule a leader can break raises CatalogError with a Spanish message.
``view()`` gives the read-only snapshot the menu engine walks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    prompts: frozenset[tuple[str, str]]  # (name, language) pairs that have media

    def items(self, menu: str) -> list[tuple[str, Lesson | Menu]]:
        """(key, lesson or sub-menu) pairs of ``menu``, sorted by key."""
        found: list[tuple[str, Lesson | Menu]] = [
            (m.key, m) for m in self.menus.values() if m.parent == menu and m.key]
        found += [(le.key, le) for le in self.lessons.values() if le.menu == menu and le.key]
        return sorted(found, key=lambda pair: pair[0])

    def ordered_lessons(self) -> list[Lesson]:
        return sorted(self.lessons.values(), key=lambda le: (le.position, le.id))
