"""The one keymap, used on the phone and on the kiosk alike, and the spoken words that stand for keys.

During a lesson (after Avaaj Otalo, whose keys peers settled on):

    5 pause / resume      7 back 10 s      9 forward 10 s
    8 replay from start   1 next lesson    4 previous lesson     0 back to the menu

In a menu: 1-9 pick an item, 0 repeats the menu (or goes up from a sub-menu); in the main menu 8 leaves a
message and 9 changes language. Saying the number or the lesson's keyword works like pressing the key.
"""

PAUSE, BACK, FORWARD, REPLAY, NEXT, PREVIOUS, MENU = "5", "7", "9", "8", "1", "4", "0"
PLAYBACK_KEYS = PAUSE + BACK + FORWARD + REPLAY + NEXT + PREVIOUS + MENU
MESSAGE_KEY, LANGUAGE_KEY = "8", "9"
RECORD_STOP_KEY = "#"

DIGIT_WORDS = {
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4",
    "cinco": "5", "seis": "6", "siete": "7", "ocho": "8", "nueve": "9",
}

# Spoken commands during a lesson and what key they stand for.
PLAYBACK_WORDS = {
    "pausa": PAUSE, "atrás": BACK, "adelante": FORWARD, "repetir": REPLAY,
    "siguiente": NEXT, "anterior": PREVIOUS, "menú": MENU,
}
# Commands that leave the lesson: confirmed first when the recogniser is not sure.
LEAVING_KEYS = frozenset({NEXT, PREVIOUS, MENU})

YES_WORDS = frozenset({"sí", "si"})
NO_WORDS = frozenset({"no"})
MENU_WORDS = {"menú": "0", "repetir": "0", "mensaje": MESSAGE_KEY, "ayuda": "0"}
LANGUAGE_WORDS = {"español": "1", "castellano": "1", "quechua": "2", "runasimi": "2"}


def word_to_key(word: str, table: dict[str, str]) -> str | None:
    """The key a recognised word stands for at this point, or None."""
    return table.get(word) or DIGIT_WORDS.get(word)
