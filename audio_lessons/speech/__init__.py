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
                    threshold: float | None = None) -> Recognizer:
    """Load one engine's model from a path; SpeechError if the engine or model is unusable.

    ``threshold`` None (or 0, the setting's default) is the engine's own: its confidences are not
    on one scale (Whisper's shares 0.75, PocketSphinx's and Vosk's confidences 0.6)."""
    chosen = {"threshold": threshold} if threshold else {}
    if engine == "vosk":
        from audio_lessons.speech.kaldi import VoskRecognizer

        return VoskRecognizer(model, **chosen)
    if engine == "whisper":
        from audio_lessons.speech.whisper import WhisperRecognizer

        return WhisperRecognizer(model, **chosen)
    if engine == "pocketsphinx":
        from audio_lessons.speech.sphinx import SphinxRecognizer

        return SphinxRecognizer(model, dictionary or None, **chosen)
    raise SpeechError(f"Motor de voz desconocido: {engine!r} (use whisper, vosk o pocketsphinx).")


def from_settings(settings: Settings | SpeechSettings,
                  models_dir: Path | None = None) -> Recognizer | None:
    """The configured recogniser, or None (voice off, keys only), with one log line saying which.

    ``engine = "auto"`` (the default) with no ``model`` takes the first installed model under
    DATA/models (``models_dir``) that loads, Whisper first (``models.candidates``).
    """
    from audio_lessons.speech.models import candidates

    speech = settings.speech if isinstance(settings, Settings) else settings
    if models_dir is None and isinstance(settings, Settings):
        models_dir = settings.data_dir / "models"
    found = candidates(speech.engine, speech.model, models_dir) if models_dir or speech.model else []
    failed = []
    for engine, model in found:
        try:
            recognizer = open_recognizer(engine, model, speech.dictionary or None,
                                         speech.accept_threshold)
        except SpeechError as exc:
            failed.append(f"{engine} model {model} unusable: {exc}")
            continue
        log.info("voice on: %s model %s (engine %s%s)", engine, model, speech.engine,
                 "".join(f"; skipped {f}" for f in failed))
        return recognizer
    if failed:
        log.error("voice off, keys only: %s", "; ".join(failed))
    elif speech.engine in ("", "none"):
        log.info("voice off, keys only: [speech] engine is %r", speech.engine)
    else:
        log.info("voice off, keys only: no %s speech model in %s (install one: pallay models "
                 "install whisper-base, or set [speech] model)",
                 "" if speech.engine == "auto" else speech.engine, models_dir)
    return None
