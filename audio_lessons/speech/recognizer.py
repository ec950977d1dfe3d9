"""The Recognizer seam: what was heard, the protocol both engines follow, and a fake.

Every engine decodes with a closed grammar (the words that make sense at that menu point), so it
always has *some* best word. ``Heard.accepted`` is what the caller acts on: it is False for
silence, saturated audio, out-of-grammar speech and any guess whose confidence is below the
threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from audio_lessons.speech import audio
from audio_lessons.speech.vocabulary import command_for, normalise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """One decision of a recogniser.

    ``text`` is the grammar word heard (None when nothing usable was heard), ``confidence`` is
    0..1, ``alternatives`` the runners-up as (word, confidence), ``reason`` why it was rejected:
    "silence", "clipped", "out-of-grammar", "low-confidence", "several-words" or "" if accepted.
    """

    text: str | None
    confidence: float
    accepted: bool
    alternatives: tuple[tuple[str, float], ...] = ()
    reason: str = ""

    @property
    def command(self) -> str | None:
        """What the menu should do: a digit "0".."9", a command name, "keyword:<w>", or None."""
        return command_for(self.text) if self.accepted else None


# A word's confidence needed to accept it, for engines whose confidences are on this scale (Whisper's
# shares have their own, whisper.DEFAULT_THRESHOLD).
DEFAULT_THRESHOLD = 0.6


def rejected(reason: str, text: str | None = None, confidence: float = 0.0,
             alternatives: tuple[tuple[str, float], ...] = ()) -> Heard:
    return Heard(text, confidence, False, alternatives, reason)


def decide(text: str | None, confidence: float, threshold: float,
           alternatives: tuple[tuple[str, float], ...] = ()) -> Heard:
    """Accept ``text`` only if it is a word and its confidence reaches ``threshold``."""
    confidence = float(min(1.0, max(0.0, confidence)))
    if not text:
        return rejected("out-of-grammar", None, confidence, alternatives)
    if confidence < threshold:
        return rejected("low-confidence", text, confidence, alternatives)
    return Heard(text, confidence, True, alternatives, "")


class Stream(Protocol):
    """Feed audio as it arrives; a Heard comes back once the speaker stops."""

    def feed(self, chunk: np.ndarray) -> Heard | None:
        """Take more samples; return the decision when end of speech is detected, else None."""

    def finish(self) -> Heard:
        """No more audio: decide on what was heard so far (silence is a rejection)."""


class Recognizer(Protocol):
    """A speech recogniser with a closed grammar chosen per call."""

    engine: str
    threshold: float

    def recognise(self, samples: np.ndarray, rate: int, words: Sequence[str]) -> Heard:
        """Decide what single grammar word a whole clip (int16 mono, 8 or 16 kHz) holds."""

    def stream(self, rate: int, words: Sequence[str]) -> Stream:
        """Start a streaming decision with end-of-speech detection."""

    def missing_words(self, words: Sequence[str]) -> tuple[str, ...]:
        """Grammar words this model cannot hear at all (reported, never silently dropped)."""


def prepare_words(words: Sequence[str]) -> tuple[str, ...]:
    """Normalise a grammar: lower case, NFC, no blanks or duplicates; SpeechError if empty."""
    from audio_lessons.errors import SpeechError

    out = tuple(dict.fromkeys(w for w in (normalise(x) for x in words) if w))
    if not out:
        raise SpeechError("La gramática no tiene ninguna palabra.")
    return out


def screen(samples: np.ndarray, rate: int) -> tuple[np.ndarray, Heard | None]:
    """Check a whole clip; return it, plus a rejection when it is silence or saturated."""
    clip = audio.check_clip(samples, rate)
    if audio.is_silent(clip, rate):
        return clip, rejected("silence")
    if audio.is_clipped(clip):
        log.info("rejected a saturated clip (%.1f%% samples at full scale)",
                 100 * np.count_nonzero(np.abs(clip.astype(np.int32)) >= 32767) / clip.size)
        return clip, rejected("clipped")
    return clip, None


class FakeRecognizer:
    """A scripted recogniser for other parts' unit tests.

    Each ``recognise`` (or stream ``finish``) returns the next scripted answer: a word (heard
    with ``confidence``), None (nothing heard), or a ready Heard. Input is checked like the real
    engines do, so bad audio raises the same SpeechError. ``calls`` records each grammar used.
    """

    engine = "fake"

    def __init__(self, answers: Sequence[str | Heard | None] = (), confidence: float = 0.9,
                 threshold: float = DEFAULT_THRESHOLD) -> None:
        self.answers = list(answers)
        self.confidence = confidence
        self.threshold = threshold
        self.calls: list[tuple[str, ...]] = []

    def recognise(self, samples: np.ndarray, rate: int, words: Sequence[str]) -> Heard:
        audio.check_clip(samples, rate)
        return self._next(prepare_words(words))

    def stream(self, rate: int, words: Sequence[str]) -> Stream:
        return _FakeStream(self, rate, prepare_words(words))

    def missing_words(self, words: Sequence[str]) -> tuple[str, ...]:
        return ()

    def _next(self, words: tuple[str, ...]) -> Heard:
        self.calls.append(words)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Heard):
            return answer
        if answer is None:
            return rejected("silence")
        word = normalise(answer)
        if word not in words:
            return rejected("out-of-grammar", None, 0.0)
        return decide(word, self.confidence, self.threshold)


class _FakeStream:
    def __init__(self, owner: FakeRecognizer, rate: int, words: tuple[str, ...]) -> None:
        self.owner, self.rate, self.words = owner, rate, words

    def feed(self, chunk: np.ndarray) -> Heard | None:
        audio.check_clip(chunk, self.rate)
        return None

    def finish(self) -> Heard:
        return self.owner._next(self.words)
