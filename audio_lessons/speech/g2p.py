"""Spanish spelling to phones, for words missing from a PocketSphinx dictionary.

Spanish spelling is close to phonemic, so a dozen rules cover it. The phone set is the one of
the VoxForge Spanish model (``A B CH D E F G GN I J K L LL M N O P R RR S T U X Y Z``): Castilian
``Z`` for c/z, ``LL`` kept apart from ``Y``. Peruvian speakers merge them (seseo, yeísmo), so
:func:`variants` adds those pronunciations too.
"""

from __future__ import annotations

import unicodedata

PHONES = frozenset(["A", "B", "CH", "D", "E", "F", "G", "GN", "I", "J", "K", "L", "LL", "M", "N", "O", "P", "R", "RR", "S", "T", "U", "X", "Y", "Z"])
_VOWELS = {"a": "A", "e": "E", "i": "I", "o": "O", "u": "U", "á": "A", "é": "E", "í": "I",
           "ó": "O", "ú": "U", "ü": "U"}
_SIMPLE = {"b": "B", "v": "B", "d": "D", "f": "F", "k": "K", "l": "L", "m": "M", "n": "N",
           "p": "P", "s": "S", "t": "T", "z": "Z", "ñ": "GN", "j": "J", "x": "X", "w": "U"}


def spellable(word: str) -> bool:
    """True when every letter of the word is one the rules know (Spanish letters only)."""
    w = unicodedata.normalize("NFC", word.lower())
    return bool(w) and all(c in _VOWELS or c in _SIMPLE or c in "cghqry" for c in w)


def phones(word: str) -> list[str]:
    """Phones of a Spanish word, e.g. ``casco`` -> ``K A S K O``; ValueError if not spellable."""
    w = unicodedata.normalize("NFC", word.lower())
    if not spellable(w):
        raise ValueError(f"cannot spell {word!r} with Spanish rules")
    out: list[str] = []
    i = 0
    while i < len(w):
        step, ph = _one(w, i)
        out.extend(ph)
        i += step
    return out


def _one(w: str, i: int) -> tuple[int, list[str]]:
    """Phones for the letters at w[i:], and how many letters they used."""
    c, nxt = w[i], w[i + 1] if i + 1 < len(w) else ""
    front = nxt in ("e", "i", "é", "í")
    if c == "c":
        if nxt == "h":
            return 2, ["CH"]
        return 1, ["Z" if front else "K"]
    if c == "q":
        return (2, ["K"]) if nxt == "u" else (1, ["K"])
    if c == "g":
        if nxt == "u" and i + 2 < len(w) and w[i + 2] in "eéií":
            return 2, ["G"]  # "gue", "gui": silent u (ü is pronounced, handled as a vowel)
        return 1, ["J" if front else "G"]
    if c == "h":
        return 1, []
    if c == "l" and nxt == "l":
        return 2, ["LL"]
    if c == "r":
        if nxt == "r":
            return 2, ["RR"]
        strong = i == 0 or w[i - 1] in "nls"
        return 1, ["RR" if strong and (i == 0 or w[i - 1] != "s") else "R"]
    if c == "y":
        at_end = i + 1 == len(w)
        return 1, ["I" if at_end or nxt not in _VOWELS else "Y"]
    if c in _VOWELS:
        return 1, [_VOWELS[c]]
    return 1, [_SIMPLE[c]]


def variants(pron: list[str]) -> list[list[str]]:
    """The pronunciation plus its seseo/yeísmo form (Z -> S, LL -> Y) when that differs."""
    merged = ["S" if p == "Z" else "Y" if p == "LL" else p for p in pron]
    return [pron] if merged == pron else [pron, merged]
