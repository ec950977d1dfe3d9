"""A pool of recognisers shared by every session of a process."""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence

import numpy as np

from audio_lessons.speech.recognizer import Heard, Recognizer


class RecognizerPool:
    """Recognisers decode one utterance at a time: sessions borrow one, the pool grows on demand.

    Models load once per recogniser, so the cost of a new one is paid only when two people
    speak at the same moment. A recogniser that says ``concurrent = True`` (Whisper: one
    CTranslate2 model takes requests from any thread) is shared by every session instead.
    """

    def __init__(self, factory: Callable[[], Recognizer]):
        self.factory = factory
        self.idle: queue.SimpleQueue = queue.SimpleQueue()

    def recognise(self, samples: np.ndarray, rate: int, words: Sequence[str]) -> Heard:
        try:
            recognizer = self.idle.get_nowait()
        except queue.Empty:
            recognizer = self.factory()
        if getattr(recognizer, "concurrent", False):
            self.idle.put(recognizer)  # back at once: the next session takes it while it works
            return recognizer.recognise(samples, rate, list(words))
        try:
            return recognizer.recognise(samples, rate, list(words))
        finally:
            self.idle.put(recognizer)
