"""Whisper recogniser for closed vocabularies: every allowed word is scored by the decoder.

Free transcription matched to the nearest word would put the accept/reject line in string
distances tuned on a test set. Here the model itself decides: the audio is encoded once, then
the decoder gives the log-likelihood of each allowed word written as the model writes it
(" Cuatro.", " cuatro", and inside the phrases a caller says around a word: "la cuatro",
"quiero el polvo"), and of its own free transcription. Those likelihoods become a posterior
over "one of the words" and "something else" (the free transcription, when it is none of the
words); a word is accepted only when its share reaches the threshold. Rejection thus comes from
the model's likelihoods: a sentence makes the free transcription far likelier than any word,
a mumble spreads the share over several words.

The model is a CTranslate2 conversion of Whisper (the format faster-whisper uses: model.bin,
config.json, tokenizer.json, vocabulary.txt), loaded once, int8 on the CPU. One loaded model
serves every call of a process: CTranslate2 runs concurrent requests from several threads.
Only ``ctranslate2`` and ``tokenizers`` are needed: the faster-whisper package would add PyAV
and onnxruntime (45 MB more per process) for decoding files and a VAD we do not use; the
log-mel features are Whisper's own recipe, computed here with numpy.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from audio_lessons.errors import SpeechError
from audio_lessons.speech import audio
from audio_lessons.speech.endpoint import EndpointStream
from audio_lessons.speech.recognizer import Heard, decide, prepare_words, rejected, screen
from audio_lessons.speech.vocabulary import normalise

log = logging.getLogger(__name__)

RATE = 16000  # Whisper hears 16 kHz; phone audio is upsampled
CHUNK_S = 30  # the encoder always sees 30 s (the clip, then silence)
HOP = 160  # 10 ms per feature frame; the encoder halves it (20 ms per position)
N_FFT = 400
LANGUAGE = "es"
MAX_FRAME_WORDS = 3  # "quiero la" + word: longer free text is a sentence, not a wrapped word
MAX_FREE_TOKENS = 24  # a command is a few tokens; a sentence needs no more to lose
BATCH = 32  # sequences scored per decoder call (each holds its vocabulary-wide logits)
# Encoder positions kept after the speech (20 ms each) for the decoder's cross-attention: the
# decoder's cost grows with the positions it attends to, and the 30 s of padding after a 1 s
# word tell it nothing but "silence follows" (measured: same decisions with 1 s of it kept).
TAIL_POSITIONS = 50
NO_SPEECH = 0.6  # above this no-speech probability the clip is silence to Whisper


def is_whisper_model(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("model.bin", "config.json", "tokenizer.json"))


class WhisperRecognizer:
    """Closed-vocabulary decisions by decoder likelihoods (see the module docstring)."""

    engine = "whisper"

    def __init__(self, model: str | Path, threshold: float = 0.6, threads: int | None = None) -> None:
        self.folder = Path(model)
        if not self.folder.is_dir() or not is_whisper_model(self.folder):
            raise SpeechError(f"No se encontró un modelo Whisper en {self.folder} (faltan "
                              "model.bin, config.json o tokenizer.json).")
        try:
            import ctranslate2
            import tokenizers
        except ImportError as exc:
            raise SpeechError("Falta el paquete ctranslate2 o tokenizers para Whisper "
                              "(pip install ctranslate2 tokenizers).") from exc
        self.threshold = threshold
        try:
            self.model = ctranslate2.models.Whisper(
                str(self.folder), device="cpu", compute_type="int8",
                intra_threads=threads or min(4, os.cpu_count() or 1))
            self.tokenizer = tokenizers.Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError on a bad model
            raise SpeechError(f"No se pudo cargar el modelo Whisper {self.folder}.") from exc
        self.n_mels = self.model.n_mels
        token = self.tokenizer.token_to_id
        ids = {name: token(f"<|{name}|>") for name in
               ("startoftranscript", LANGUAGE, "transcribe", "notimestamps", "endoftext")}
        if None in ids.values():
            raise SpeechError(f"El modelo Whisper {self.folder} no es multilingüe (no sabe español).")
        self.start = [ids["startoftranscript"], ids[LANGUAGE], ids["transcribe"], ids["notimestamps"]]
        self.eot = ids["endoftext"]
        self.period = token(".")
        self._spellings: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        self.ctranslate2 = ctranslate2

    def missing_words(self, words: Sequence[str]) -> tuple[str, ...]:
        """None: Whisper can write any Spanish word."""
        prepare_words(words)
        return ()

    def recognise(self, samples: np.ndarray, rate: int, words: Sequence[str]) -> Heard:
        grammar = prepare_words(words)
        clip, rejection = screen(samples, rate)
        if rejection:
            return rejection
        return self.decide(audio.resample(clip, rate, RATE), grammar)

    def stream(self, rate: int, words: Sequence[str]) -> EndpointStream:
        grammar = prepare_words(words)
        return EndpointStream(lambda: _Session(self, grammar), rate, RATE)

    def decide(self, clip: np.ndarray, grammar: tuple[str, ...]) -> Heard:
        """One decision on a 16 kHz int16 clip: encode once, score every word, compare."""
        speech = clip[: CHUNK_S * RATE].astype(np.float32) / 32768.0
        features = log_mel(speech, self.n_mels)
        encoded = self.model.encode(self.ctranslate2.StorageView.from_array(features[None]))
        keep = min(features.shape[1] // 2, len(speech) // (2 * HOP) + TAIL_POSITIONS)
        context = np.ascontiguousarray(np.asarray(encoded)[:, :keep])
        free = self.model.generate(self._batch(context, 1), [self.start], beam_size=1,
                                   max_length=len(self.start) + MAX_FREE_TOKENS,
                                   return_scores=True, length_penalty=0,
                                   return_no_speech_prob=True)[0]
        if free.no_speech_prob > NO_SPEECH:
            return rejected("silence", None, 0.0)
        text = self.tokenizer.decode(free.sequences_ids[0]).strip()
        said = plain(text).split()
        frame = " ".join(said[:-1]) if 1 < len(said) <= MAX_FRAME_WORDS + 1 else ""
        candidates = [(word, form) for word in grammar for form in self._forms(word, frame)]
        scores = self._score(context, [self._tokens(form) for _, form in candidates])
        best: dict[str, float] = {}
        for (word, _), score in zip(candidates, scores):
            best[word] = max(best.get(word, -np.inf), score)
        other = float(free.scores[0])
        heard_as = " ".join(said[-1:]) if frame else " ".join(said)
        if heard_as in best:  # the free transcription is that word (maybe in her frame)
            best[heard_as] = max(best[heard_as], other)
            other = -np.inf
        ranked = sorted(best.items(), key=lambda item: -item[1])
        shares = _softmax(np.array([s for _, s in ranked] + [other]))
        alternatives = tuple((w, float(p)) for (w, _), p in zip(ranked[1:4], shares[1:4]))
        log.debug("whisper: %r -> %s (%.2f), other %.2f", text, ranked[0][0], shares[0], shares[-1])
        if shares[-1] > shares[0]:
            return rejected("out-of-grammar", ranked[0][0], float(shares[0]), alternatives)
        return decide(ranked[0][0], float(shares[0]), self.threshold, alternatives)

    @staticmethod
    def _forms(word: str, frame: str) -> tuple[str, ...]:
        """How Whisper may write ``word``: alone (capitalised or not), and in the caller's own
        frame when she wrapped it ("quiero el" + word); each form's final period is optional."""
        forms = [f" {word[0].upper()}{word[1:]}.", f" {word}."]
        if frame:
            forms.append(f" {frame[0].upper()}{frame[1:]} {word}.")
        return tuple(forms)

    def _tokens(self, form: str) -> tuple[int, ...]:
        with self._lock:
            if form not in self._spellings:
                self._spellings[form] = tuple(
                    self.tokenizer.encode(form, add_special_tokens=False).ids)
            return self._spellings[form]

    def _score(self, context: np.ndarray, sequences: list[tuple[int, ...]]) -> list[float]:
        """Log-likelihood of each token sequence followed by end-of-text (or, when it ends in a
        period, of the sequence without it, whichever is likelier).

        The decoder is forced along each sequence, in batches of one length: the prompt's tokens
        after the start come back as per-step logits, then one free step, whose logits give
        end-of-text its probability. CTranslate2 4.8 returns fewer steps than ``max_length``
        allows once a prefix is forced (about half, measured), hence the generous limit;
        decoding stops at end-of-text anyway.
        """
        by_length: dict[int, list[int]] = {}
        for i, tokens in enumerate(sequences):
            by_length.setdefault(len(tokens), []).append(i)
        scores = [-np.inf] * len(sequences)
        for length, members in by_length.items():
            for first in range(0, len(members), BATCH):
                batch = members[first:first + BATCH]
                results = self.model.generate(
                    self._batch(context, len(batch)), [self.start + list(sequences[i]) for i in batch],
                    beam_size=1, max_length=2 * (len(self.start) + length + 1),
                    return_logits_vocab=True, suppress_blank=False, suppress_tokens=[])
                for i, result in zip(batch, results):
                    scores[i] = self._path_score(sequences[i], result.logits[0])
        return scores

    def _path_score(self, tokens: tuple[int, ...], steps) -> float:
        if len(steps) <= len(tokens):
            raise SpeechError("Whisper no devolvió la puntuación de una palabra.")
        total, best = 0.0, -np.inf
        for k in range(len(tokens) + 1):
            logits = np.asarray(steps[k], np.float32).reshape(-1)
            top = float(logits.max())
            norm = top + float(np.log(np.exp(logits - top).sum()))
            if k == len(tokens) or (k == len(tokens) - 1 and tokens[k] == self.period):
                best = max(best, total + float(logits[self.eot]) - norm)
            if k < len(tokens):
                total += float(logits[tokens[k]]) - norm
        return best

    def _batch(self, context: np.ndarray, n: int):
        return self.ctranslate2.StorageView.from_array(
            np.ascontiguousarray(np.repeat(context, n, axis=0)) if n > 1 else context)


class _Session:
    """One streamed utterance: gather the endpointer's speech, decide at its end."""

    def __init__(self, owner: WhisperRecognizer, grammar: tuple[str, ...]) -> None:
        self.owner, self.grammar, self.parts = owner, grammar, []

    def accept(self, samples: np.ndarray) -> None:
        if samples.size:
            self.parts.append(samples)

    def result(self) -> Heard:
        if not self.parts:
            return rejected("silence")
        return self.owner.decide(np.concatenate(self.parts), self.grammar)


def plain(text: str) -> str:
    """Whisper's text as grammar words are spelt: lower case, no punctuation."""
    return " ".join(_WORD.findall(normalise(text)))


_WORD = re.compile(r"[^\W_]+")


def _softmax(scores: np.ndarray) -> np.ndarray:
    top = scores.max()
    weights = np.exp(scores - top)
    return weights / weights.sum()


def log_mel(speech: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Whisper's input: log-mel spectrogram of 30 s (``speech`` then silence), [n_mels, 3000]."""
    padded = np.zeros(CHUNK_S * RATE, np.float32)
    padded[: speech.size] = speech[: padded.size]
    framed = np.pad(padded, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(framed, N_FFT)[::HOP]
    spectrum = np.abs(np.fft.rfft(frames * _hann(), axis=1)) ** 2
    mel = _mel_filters(n_mels) @ spectrum[:-1].T
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).astype(np.float32)


@cache
def _hann() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


@cache
def _mel_filters(n_mels: int) -> np.ndarray:
    """Slaney-style mel filterbank (area-normalised triangles), as Whisper was trained with."""
    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        linear = f / (200.0 / 3)
        log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log_part, linear)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)),
                        m * (200.0 / 3))

    fft_hz = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(RATE / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)

