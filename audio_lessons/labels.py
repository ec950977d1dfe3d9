"""What lessons are called: titles, topics, keywords and speaker names, limited to what a menu says.

Every check raises CatalogError with a Spanish message a leader can act on.
"""

from __future__ import annotations

from typing import NoReturn

from audio_lessons.errors import CatalogError

# What a menu can say: the title is spoken before every key ("<title>, marque 3"), so 60 characters
# (about 4 s at the prompts' speed; the longest starter title, in Quechua, has 46). A keyword is
# something a caller says: a word or three. Speaker names are credited aloud and in the panel.
MAX_TITLE_CHARS = 60
MAX_KEYWORD_CHARS = 30
MAX_KEYWORD_WORDS = 3
MAX_KEYWORDS = 6
MAX_SPEAKER_CHARS = 60
MAX_TOPIC_CHARS = 200


def _fail(message: str) -> NoReturn:
    raise CatalogError(message)


def one_line(text: str | None) -> str:
    """Whitespace runs (newlines, tabs) become one space: a spoken menu has no lines."""
    return " ".join(str(text or "").split())


def check_title(title: str) -> str:
    title = one_line(title)
    if not title:
        _fail("El título no puede estar vacío.")
    if len(title) > MAX_TITLE_CHARS:
        _fail(f"El título tiene {len(title)} caracteres; el máximo es {MAX_TITLE_CHARS}, lo que "
              "el menú puede decir antes de cada tecla. Use un título corto, como «el polvo».")
    return title


def check_topic(topic: str) -> str:
    topic = one_line(topic)
    if len(topic) > MAX_TOPIC_CHARS:
        _fail(f"El tema tiene {len(topic)} caracteres; el máximo es {MAX_TOPIC_CHARS}.")
    return topic


def check_speaker(speaker: str) -> str:
    """The speaker's name as stored (one line); CatalogError if it is too long to credit."""
    speaker = one_line(speaker)
    if len(speaker) > MAX_SPEAKER_CHARS:
        _fail(f"El nombre de quien grabó tiene {len(speaker)} caracteres; el máximo es "
              f"{MAX_SPEAKER_CHARS}.")
    return speaker


def normalise_keywords(words) -> tuple[str, ...]:
    """Lowercase, stripped, de-duplicated spoken words; accents are kept (they are pronounced).

    CatalogError if there are more than a caller could be told, or one is longer than a few words.
    """
    if isinstance(words, str):
        words = words.split(",")
    seen: dict[str, None] = {}
    for word in words:
        word = " ".join(str(word).lower().split())
        if len(word) > MAX_KEYWORD_CHARS or len(word.split()) > MAX_KEYWORD_WORDS:
            _fail(f"La palabra clave «{word[:MAX_KEYWORD_CHARS]}…» es demasiado larga: use una "
                  f"palabra o hasta {MAX_KEYWORD_WORDS}, de {MAX_KEYWORD_CHARS} letras como máximo.")
        if word:
            seen.setdefault(word)
    if len(seen) > MAX_KEYWORDS:
        _fail(f"Hay {len(seen)} palabras clave; el máximo es {MAX_KEYWORDS} por lección.")
    return tuple(seen)
