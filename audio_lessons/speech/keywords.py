"""Checks for admins adding a spoken keyword: can the model hear it, is it confused with another?

Confusion is measured, not guessed: the new word and each word in use are rendered by espeak-ng
(two voices, two speeds, a 20 dB noise floor, 8 kHz like the phone line) and decoded with the
grammar the menu would use. Synthetic voices differ from miners' voices, so a clean result is a
hint, not a promise; a flagged pair is worth renaming.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from audio_lessons.speech import audio, espeak
from audio_lessons.speech.recognizer import Recognizer, prepare_words
from audio_lessons.speech.vocabulary import normalise

log = logging.getLogger(__name__)

TRIALS = (("roa/es-419", 140), ("roa/es-419", 175), ("roa/es", 140), ("roa/es", 175))
CONFUSED_SHARE = 0.25  # flag a pair when at least 1 trial in 4 is heard as the other word


@dataclass(frozen=True)
class KeywordReport:
    """What an admin needs to know about one keyword."""

    word: str
    hearable: bool
    source: str  # "dictionary", "derived" (rule-based pronunciation), "vocabulary" or "missing"
    pronunciation: str  # phones for PocketSphinx, "" for Vosk
    heard_as_itself: float  # share of synthetic trials recognised as the word
    confusions: tuple[tuple[str, float], ...]  # (word in use, share of trials mixed up)

    @property
    def ok(self) -> bool:
        return self.hearable and not self.confusions


def check_keyword(word: str, recognizer: Recognizer, words_in_use: Sequence[str],
                  rate: int = 8000) -> KeywordReport:
    """Report whether ``recognizer`` can hear ``word`` and which words in use it is confused with."""
    word = normalise(word)
    source, pron = _source(word, recognizer)
    if source == "missing":
        return KeywordReport(word, False, source, "", 0.0, ())
    in_use = tuple(w for w in prepare_words(words_in_use) if w != word)
    grammar = (*in_use, word)
    heard_new = _heard(word, recognizer, grammar, rate)
    itself = heard_new[word] / len(TRIALS)
    confusions: dict[str, float] = {}
    for other in in_use:
        heard_other = _heard(other, recognizer, grammar, rate)
        share = max(heard_new[other], heard_other[word]) / len(TRIALS)
        if share >= CONFUSED_SHARE:
            confusions[other] = share
    ranked = tuple(sorted(confusions.items(), key=lambda kv: -kv[1]))
    return KeywordReport(word, True, source, pron, itself, ranked)


def _source(word: str, recognizer: Recognizer) -> tuple[str, str]:
    if recognizer.missing_words([word]):
        return "missing", ""
    pronunciations = getattr(recognizer, "pronunciations", None)
    if pronunciations is None:
        return "vocabulary", ""
    parts = [pronunciations(p) for p in word.split()]
    source = "derived" if any(s == "derived" for _, s in parts) else "dictionary"
    return source, " | ".join(" ".join(prons[0]) for prons, _ in parts)


def _heard(word: str, recognizer: Recognizer, grammar: tuple[str, ...], rate: int) -> Counter:
    """How often each grammar word comes out when ``word`` is spoken (best guess, even rejected)."""
    counts: Counter = Counter()
    for i, (voice, speed) in enumerate(TRIALS):
        clip = audio.add_noise(espeak.speak(word, voice, speed, rate), 20.0, seed=i)
        heard = recognizer.recognise(clip, rate, grammar)
        counts[heard.text] += 1
    return counts
