"""Offline voice commands: closed-vocabulary recognisers (Whisper, Vosk, PocketSphinx) with rejection.

Use :func:`from_settings` to get the configured recogniser (or None: voice off, keys only),
then ``recognise(samples, rate, words)`` or ``stream(rate, words)``; act only on a Heard whose
``accepted`` is True, through ``Heard.command``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from audio_lessons.config import Settings, SpeechSettings
from audio_lessons.errors import SpeechError
from audio_lessons.speech.recognizer import FakeRecognizer, Heard, Recognizer, Stream
from audio_lessons.speech.vocabulary import (
    COMMAND_WORDS,
    DIGIT_WORDS,
    NAMED_COMMANDS,
    command_for,
    grammar_words,
)

log = logging.getLogger(__name__)

ENGINES = ("whisper", "vosk", "pocketsphinx")

__all__ = [
    "COMMAND_WORDS",
    "DIGIT_WORDS",
    "ENGINES",
    "NAMED_COMMANDS",
    "FakeRecognizer",
    "Heard",
    "Recognizer",
    "SpeechError",
    "Stream",
    "command_for",
    "from_settings",
    "grammar_words",
    "open_recognizer",
]


def open_recognizer(engine: str, model: str | Path, dictionary: str | Path | None = None,
                    threshold: float = 0.6) -> Recognizer:
    """Load one engine's model from a path; SpeechError if the engine or model is unusable."""
    if engine == "vosk":
        from audio_lessons.speech.kaldi import VoskRecognizer

        return VoskRecognizer(model, threshold)
    if engine == "whisper":
        from audio_lessons.speech.whisper import WhisperRecognizer

        return WhisperRecognizer(model, threshold)
    if engine == "pocketsphinx":
        from audio_lessons.speech.sphinx import SphinxRecognizer

        return SphinxRecognizer(model, dictionary or None, threshold)
    raise SpeechError(f"Motor de voz desconocido: {engine!r} (use whisper, vosk o pocketsphinx).")


def from_settings(settings: Settings | SpeechSettings) -> Recognizer | None:
    """The configured recogniser, or None (voice off, keys only) with one clear log line."""
    speech = settings.speech if isinstance(settings, Settings) else settings
    if speech.engine in ("", "none") or not speech.model:
        log.info("voice off, keys only: no speech engine/model configured "
                 "(set [speech] engine and model)")
        return None
    try:
        recognizer = open_recognizer(speech.engine, speech.model, speech.dictionary or None,
                                     speech.accept_threshold)
    except SpeechError as exc:
        log.error("voice off, keys only: %s model %s unusable: %s", speech.engine, speech.model, exc)
        return None
    log.info("voice on: %s model %s", speech.engine, speech.model)
    return recognizer
