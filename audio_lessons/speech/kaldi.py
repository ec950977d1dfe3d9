"""Vosk (Kaldi) recogniser: a model folder from a path, never a download.

Vosk drops grammar words missing from the model with only a warning on stderr, so every grammar
is checked against the vocabulary first and missing words are reported in the log (and by
``missing_words`` for the admin checks). Vosk resamples only downwards, so 8 kHz phone audio is
upsampled here for 16 kHz models.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audio_lessons.errors import SpeechError
from audio_lessons.speech import audio
from audio_lessons.speech.endpoint import EndpointStream
from audio_lessons.speech.recognizer import (
    DEFAULT_THRESHOLD,
    Heard,
    decide,
    prepare_words,
    rejected,
    screen,
)

log = logging.getLogger(__name__)

UNK = "[unk]"


def model_rate(folder: Path) -> int:
    """Sample rate the model's features expect (Kaldi's default 16 kHz unless mfcc.conf says)."""
    conf = folder / "conf" / "mfcc.conf"
    if conf.is_file():
        found = re.search(r"--sample-frequency=(\d+)", conf.read_text(errors="replace"))
        if found:
            return int(found.group(1))
    return 16000


def is_vosk_model(folder: Path) -> bool:
    return (folder / "am" / "final.mdl").is_file() or (folder / "final.mdl").is_file()


class VoskRecognizer:
    """Closed-grammar Vosk with word confidences; "[unk]" catches other speech where it exists.

    One utterance at a time per recogniser (KaldiRecognizer objects are made per utterance,
    the loaded model is shared and read-only).
    """

    engine = "vosk"

    def __init__(self, model: str | Path, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.folder = Path(model)
        if not self.folder.is_dir() or not is_vosk_model(self.folder):
            raise SpeechError(f"No se encontró un modelo Vosk en {self.folder}.")
        import vosk

        vosk.SetLogLevel(-1)
        try:
            self.model = vosk.Model(str(self.folder))
        except Exception as exc:  # vosk raises a bare Exception when loading fails
            raise SpeechError(f"No se pudo cargar el modelo Vosk {self.folder}.") from exc
        self.rate = model_rate(self.folder)
        self.threshold = threshold
        self.has_unk = self.model.vosk_model_find_word(UNK) != -1
        self._reported: set[tuple[str, ...]] = set()

    def knows(self, word: str) -> bool:
        return self.model.vosk_model_find_word(word) != -1

    def missing_words(self, words: Sequence[str]) -> tuple[str, ...]:
        """Grammar entries with a word outside the model's vocabulary."""
        return tuple(w for w in prepare_words(words) if not all(self.knows(p) for p in w.split()))

    def recognise(self, samples: np.ndarray, rate: int, words: Sequence[str]) -> Heard:
        clip, rejection = screen(samples, rate)
        grammar = self._grammar(prepare_words(words))
        if rejection:
            return rejection
        session = _Session(self, grammar)
        session.accept(audio.resample(clip, rate, self.rate))
        return session.result()

    def stream(self, rate: int, words: Sequence[str]) -> EndpointStream:
        grammar = self._grammar(prepare_words(words))
        return EndpointStream(lambda: _Session(self, grammar), rate, self.rate)

    def _grammar(self, words: tuple[str, ...]) -> tuple[str, ...]:
        missing = self.missing_words(words)
        if missing and words not in self._reported:
            self._reported.add(words)
            log.warning("the Vosk model %s does not know grammar words %s: they will never be "
                        "heard", self.folder.name, ", ".join(missing))
        usable = tuple(w for w in words if w not in missing)
        if not usable:
            raise SpeechError("Ninguna palabra de la gramática está en el vocabulario del modelo.")
        return usable + ((UNK,) if self.has_unk else ())


class _Session:
    def __init__(self, owner: VoskRecognizer, grammar: tuple[str, ...]) -> None:
        import vosk

        self.owner = owner
        self.grammar = set(grammar)
        self.rec = vosk.KaldiRecognizer(owner.model, owner.rate, json.dumps(list(grammar), ensure_ascii=False))
        self.rec.SetWords(True)
        self.results: list[dict] = []

    def accept(self, samples: np.ndarray) -> None:
        if samples.size and self.rec.AcceptWaveform(np.ascontiguousarray(samples, "<i2").tobytes()):
            self.results.append(json.loads(self.rec.Result()))

    def result(self) -> Heard:
        self.results.append(json.loads(self.rec.FinalResult()))
        found = [w for r in self.results for w in r.get("result", [])]
        if not found:
            return rejected("out-of-grammar")
        if any(w["word"] == UNK for w in found):
            return rejected("out-of-grammar", None, 0.0)
        distinct = list(dict.fromkeys(w["word"] for w in found))
        conf = min(float(w.get("conf", 0.0)) for w in found)
        if len(distinct) > 1:
            # phrases from the grammar may hold several words; anything else is two commands
            phrase = " ".join(distinct)
            if phrase not in self.grammar:
                alts = tuple((w, conf) for w in distinct)
                return rejected("several-words", None, conf, alts)
            return decide(phrase, conf, self.owner.threshold)
        return decide(distinct[0], conf, self.owner.threshold)
