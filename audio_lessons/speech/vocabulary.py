"""The spoken command words and what they stand for.

The menu engine treats a digit word like its key ("cuatro" acts like key 4) and the other
words as named commands.
"""

from __future__ import annotations

import unicodedata

from audio_lessons.keymap import DIGIT_WORDS  # one table for the engine and the recognisers

# word -> command name the menu engine understands (English identifiers, never shown to users)
NAMED_COMMANDS: dict[str, str] = {
    "repetir": "repeat", "siguiente": "next", "atrás": "back", "pausa": "pause",
    "menú": "menu", "ayuda": "help", "mensaje": "message", "sí": "yes", "no": "no",
}

# uno..nueve, cero, then the named commands (the order the benchmark's trials follow)
COMMAND_WORDS: tuple[str, ...] = (
    *(w for w in DIGIT_WORDS if w != "cero"), "cero", *NAMED_COMMANDS)


def normalise(word: str) -> str:
    """Lower-case, trimmed, NFC form of a word: how grammars and results spell words."""
    return unicodedata.normalize("NFC", word.strip().lower())


def command_for(word: str | None) -> str | None:
    """What a heard word means to the menu: a digit "0".."9", a command name, or None.

    Lesson keywords are not commands: they map to ``"keyword:<word>"`` so the menu can look them up.
    """
    if not word:
        return None
    w = normalise(word)
    if w in DIGIT_WORDS:
        return DIGIT_WORDS[w]
    if w in NAMED_COMMANDS:
        return NAMED_COMMANDS[w]
    return f"keyword:{w}"


def grammar_words(keywords: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The default command words plus lesson keywords, normalised, without duplicates."""
    seen: dict[str, None] = {}
    for w in (*COMMAND_WORDS, *keywords):
        n = normalise(w)
        if n:
            seen.setdefault(n, None)
    return tuple(seen)
