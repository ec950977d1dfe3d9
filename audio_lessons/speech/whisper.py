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

When that leaves the model unsure (a share under the threshold, or its free text likelier), it
decodes the same encoded audio once more with the allowed words as its "previous text" (what
faster-whisper calls the initial prompt): on a phone line it then writes "Viernes." where it
wrote "Biernes.". That look scores again only the words the first found likeliest, and each
alone, never inside a frame: behind the list Whisper writes list-like text, and on one CPU it
wrote "Contres, miércoles." for "contraseña", whose last word she never said. Only a
second look: prompted from the start, Whisper hears the prompt's words in babble ("No.", a list
of words) and is right less often in noise. Whisper's shares are also
surer than PocketSphinx's confidences, hence its own threshold (DEFAULT_THRESHOLD).

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
import unicodedata
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
MAX_FRAME_WORDS = 2  # "quiero la" + word: longer free text is a sentence, not a wrapped word
MAX_FREE_TOKENS = 24  # start tokens included: free text not ended within this is a sentence
# Candidates per decoder call (each step returns vocabulary-wide logits); a round of scoring is
# one call per worker, side by side, as a call's cost grows faster than its batch.
BATCH = 8
PRUNE_NATS = 7.0  # candidates whose bound is this far below the best cannot move the decision
# Prior log-odds, in nats, that she says one of the words rather than something else when the
# line asks her a question: e**3 = 20 to 1. Without it a word Whisper misspells on a phone line
# ("Biernes") loses to its own misspelling. Set on the Mexican voice's clean words: best word minus
# free text was -3.0 nats at worst for words, and -2.9, then -5.2, at best for 90 sentences.
COMMAND_PRIOR = 3.0
# The same odds when the words are Whisper's previous text: that prompt already leans it towards
# them, so half the prior. Measured (10 s encoded, both voices): with 3.0 a clean Asterisk prompt
# ("contraseña") was taken for "miércoles"; with 0, 93% of clean words right; with 1.5, 97%, and
# 2 of 46 words outside the line's menu accepted in 10 dB babble.
PROMPTED_PRIOR = COMMAND_PRIOR / 2
# Encoder positions kept after the speech (20 ms each) for the decoder's cross-attention: the
# decoder's cost grows with the positions it attends to, and the padding after a 1 s word
# matters less (measured on human words: 1 s kept lost a third of them, 5 s kept lost few).
TAIL_POSITIONS = 250
# Seconds of silence after her word that the encoder sees (Whisper was trained on 30 s; its cost
# grows faster than the length). Measured on both voices' 68 words, with the second look: 30 s
# 97% right clean, 78% in 10 dB babble; 10 s 99% and 79%, in 0.55x the time; 5 s 91% and 75%.
ENCODED_SILENCE_S = 10
MAX_PROMPT_TOKENS = 223  # Whisper's: half its 448 decoder positions, less the marker
NO_SPEECH = 0.6  # above this no-speech probability the clip is silence to Whisper
# A word's share needed to accept it. At 0.6 (PocketSphinx's) the first decoding accepted "no" for
# 5 of 68 words in 10 dB babble with shares of 0.62-0.74; at 0.75 the second look recovers most
# words those would have cost (bench_voice: see the README's table).
DEFAULT_THRESHOLD = 0.75
UNSURE = ("low-confidence", "out-of-grammar")  # the decisions the prompted decoding revisits
# Words the prompted look scores again: the first look's likeliest (and any its free text names).
# Behind the prompt every candidate costs some 100 tokens more; scoring all 34 words' 68 forms
# again took a noisy word 2.4 s (p90). Measured on both voices in 10 dB babble, 34 words: all of
# them 54/68 right, 2 wrong, p90 2.4 s; the likeliest 12: 55 right, 3 wrong (a "no" at 0.78 that
# all 34 put at 0.747), p90 1.4 s; the likeliest 8: 55 right, 4 wrong. Clean words: unchanged.
RESCORED = 12


def is_whisper_model(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("model.bin", "config.json", "tokenizer.json"))


class WhisperRecognizer:
    """Closed-vocabulary decisions by decoder likelihoods (see the module docstring)."""

    engine = "whisper"
    concurrent = True  # one loaded model serves every session (see speech.pool)

    def __init__(self, model: str | Path, threshold: float = DEFAULT_THRESHOLD,
                 threads: int | None = None) -> None:
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
        # Workers of one thread each, so that a decision's batches run side by side: measured on
        # this 2-core VM, one thread decodes a batch faster than two threads do (116 vs 143 ms),
        # and two one-thread workers score a noisy word's candidates in 0.35x the time.
        self.workers = threads or min(4, os.cpu_count() or 1)
        try:
            self.model = ctranslate2.models.Whisper(
                str(self.folder), device="cpu", compute_type="int8",
                inter_threads=self.workers, intra_threads=1)
            self.tokenizer = tokenizers.Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError on a bad model
            raise SpeechError(f"No se pudo cargar el modelo Whisper {self.folder}.") from exc
        self.n_mels = self.model.n_mels
        token = self.tokenizer.token_to_id
        ids = {name: token(f"<|{name}|>") for name in ("startoftranscript", LANGUAGE, "transcribe",
                                                       "notimestamps", "endoftext", "startofprev")}
        if None in ids.values():
            raise SpeechError(f"El modelo Whisper {self.folder} no es multilingüe (no sabe español).")
        self.start = [ids["startoftranscript"], ids[LANGUAGE], ids["transcribe"], ids["notimestamps"]]
        self.previous = ids["startofprev"]
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
        """One decision on a 16 kHz int16 clip: encode once, then decode as Whisper would, and
        when that leaves it unsure, once more with the allowed words as its previous text."""
        speech = clip[: CHUNK_S * RATE].astype(np.float32) / 32768.0
        frames = min(CHUNK_S * RATE, speech.size + ENCODED_SILENCE_S * RATE) // (2 * HOP) * 2
        features = log_mel(speech, self.n_mels, frames)
        encoded = self.model.encode(self.ctranslate2.StorageView.from_array(features[None]))
        keep = min(frames // 2, speech.size // (2 * HOP) + TAIL_POSITIONS)
        context = np.ascontiguousarray(np.asarray(encoded)[:, :keep])
        heard, scores = self._decode(context, grammar, self.start, COMMAND_PRIOR)
        if heard.reason in UNSURE:
            likeliest = sorted(grammar, key=lambda word: -scores[word])[:RESCORED]
            heard, _ = self._decode(context, grammar, self._prompt(grammar) + self.start,
                                    PROMPTED_PRIOR, likeliest, in_frame=False)
        return heard

    def _decode(self, context: np.ndarray, grammar: tuple[str, ...], start: list[int],
                prior: float, only: Sequence[str] = (), in_frame: bool = True) -> tuple[Heard, dict]:
        """Transcribe freely after ``start``, score the words after it (``only`` those, and any
        the free text names, when given), weigh them (see above); ``in_frame``: also inside her
        frame ("quiero el polvo"). Returns the decision and each word's score (none when the free
        text already decided: silence, a sentence)."""
        free = self.model.generate(self._batch(context, 1), [start], beam_size=1,
                                   max_length=MAX_FREE_TOKENS + len(start) - len(self.start),
                                   return_scores=True, length_penalty=0, return_logits_vocab=True,
                                   return_no_speech_prob=True)[0]
        if free.no_speech_prob > NO_SPEECH:
            return rejected("silence", None, 0.0), {}
        tokens, steps = tuple(free.sequences_ids[0]), free.logits[0]
        text = self.tokenizer.decode(list(tokens)).strip()
        said = plain(text).split()
        if len(steps) <= len(tokens):  # no end-of-text within the limit: a sentence
            log.debug("whisper: %r... is a sentence, not a command", text)
            return rejected("several-words"), {}
        candidates = self._candidates(grammar, tokens, steps, in_frame)
        if only:
            candidates = [c for c in candidates if c[1] in {*only, *said}]
        best = self._best_words(context, start, grammar, candidates)
        other = float(free.scores[0]) - prior
        framed = in_frame and len(said) <= MAX_FRAME_WORDS + 1
        for word in (" ".join(said), " ".join(said[-1:]) if framed else ""):  # alone, in a frame
            same = [w for w in best if folded(w) == folded(word)]
            if same:
                best[same[0]] = max(best[same[0]], float(free.scores[0]))
                other = -np.inf  # the free transcription is that word: not another hypothesis
                break
        ranked = sorted(best.items(), key=lambda item: -item[1])
        shares = _softmax(np.array([s for _, s in ranked] + [other]))
        alternatives = tuple((w, float(p)) for (w, _), p in zip(ranked[1:4], shares[1:4]))
        log.debug("whisper: %r -> %s (%.2f), other %.2f, margin %.2f", text, ranked[0][0],
                  shares[0], shares[-1], ranked[0][1] - float(free.scores[0]))
        if shares[-1] > shares[0]:
            return rejected("out-of-grammar", ranked[0][0], float(shares[0]), alternatives), best
        return decide(ranked[0][0], float(shares[0]), self.threshold, alternatives), best

    def _candidates(self, grammar: tuple[str, ...], free: tuple[int, ...], steps,
                    in_frame: bool) -> list:
        """(bound, word, tokens) for each way of writing each word, best bound first.

        A word's score can only fall below the log-probability of its first token, which the
        free transcription's logits already give: at its first step for the word alone
        (" Cuatro.", " cuatro."), and (``in_frame``) after her frame for the word inside it, when
        she wrapped it ("Quiero el" + " polvo.": the frame is the free text but its last word).
        """
        first = _log_probs(steps[0])
        candidates = []
        for word in grammar:
            for form in (f" {word[0].upper()}{word[1:]}.", f" {word}."):
                tokens = self._tokens(form)
                candidates.append((float(first[tokens[0]]), word, tokens))
        words = self.tokenizer.decode(list(free)).split()
        if in_frame and 1 < len(words) <= MAX_FRAME_WORDS + 1:
            frame = self._tokens(" " + " ".join(words[:-1]))
            if free[: len(frame)] == frame and len(steps) > len(frame):
                after = _log_probs(steps[len(frame)])
                for word in grammar:
                    tokens = frame + self._tokens(f" {word}.")
                    candidates.append((float(after[tokens[len(frame)]]), word, tokens))
        return sorted(candidates, key=lambda c: -c[0])

    def _best_words(self, context: np.ndarray, start: list[int], grammar: tuple[str, ...],
                    candidates) -> dict:
        """Each word's best score, scoring candidates in bound order until the rest cannot
        matter (their bound is PRUNE_NATS below the best score: under 0.1% of its share)."""
        best = dict.fromkeys(grammar, -np.inf)
        top = -np.inf
        batches = [candidates[first:first + BATCH] for first in range(0, len(candidates), BATCH)]
        for first in range(0, len(batches), self.workers):
            round_ = [b for b in batches[first:first + self.workers] if b[0][0] >= top - PRUNE_NATS]
            if not round_:
                break
            scored = self._score(context, start, [[c[2] for c in batch] for batch in round_])
            for (_, word, _), score in zip([c for batch in round_ for c in batch], scored):
                best[word] = max(best[word], score)
                top = max(top, score)
        return best

    def _tokens(self, form: str) -> tuple[int, ...]:
        with self._lock:
            if form not in self._spellings:
                self._spellings[form] = tuple(
                    self.tokenizer.encode(form, add_special_tokens=False).ids)
            return self._spellings[form]

    def _prompt(self, grammar: tuple[str, ...]) -> list[int]:
        """The allowed words as the text Whisper heard before: " uno, dos, tres."; Whisper's own
        limit on that text (the last MAX_PROMPT_TOKENS tokens) keeps room for the decoding."""
        return [self.previous, *self._tokens(" " + ", ".join(grammar) + ".")[-MAX_PROMPT_TOKENS:]]

    def _score(self, context: np.ndarray, start: list[int],
               batches: list[list[tuple[int, ...]]]) -> list[float]:
        """Log-likelihood of each token sequence followed by end-of-text (or, when it ends in a
        period, of the sequence without it, whichever is likelier), in the batches' order.

        One decoder call per batch forces its sequences at once (prompts of any length): the
        prompt's tokens after the start come back as per-step logits, then free steps, the first
        of which gives end-of-text its probability. The batches run side by side, one per worker
        (a worker's cost grows faster than its batch). With a forced prefix CTranslate2 4.8
        returns only about ``max_length / 2`` steps, and behind a previous text ``max_length``
        less the start's length (both measured), hence the limit.
        """
        jobs = []
        for sequences in batches:
            longest = max(len(tokens) for tokens in sequences)
            jobs.append((sequences, self.model.generate(
                self._batch(context, len(sequences)), [start + list(t) for t in sequences],
                beam_size=1, max_length=max(2 * (longest + 1), longest + len(start) + 2),
                return_logits_vocab=True, suppress_blank=False, suppress_tokens=[],
                asynchronous=True)))
        return [self._path_score(t, r.result().logits[0])
                for sequences, results in jobs for t, r in zip(sequences, results)]

    def _path_score(self, tokens: tuple[int, ...], steps) -> float:
        if len(steps) <= len(tokens):
            raise SpeechError("Whisper no devolvió la puntuación de una palabra.")
        total, best = 0.0, -np.inf
        for k in range(len(tokens) + 1):
            log_probs = _log_probs(steps[k])
            if k == len(tokens) or (k == len(tokens) - 1 and tokens[k] == self.period):
                best = max(best, total + float(log_probs[self.eot]))
            if k < len(tokens):
                total += float(log_probs[tokens[k]])
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


def _log_probs(logits) -> np.ndarray:
    """Log-softmax of one step's logits (a CTranslate2 StorageView)."""
    values = np.asarray(logits, np.float32).reshape(-1)
    top = float(values.max())
    return values - (top + float(np.log(np.exp(values - top).sum())))


def folded(word: str) -> str:
    """A word without its accents: Whisper writes "Sabado" for "sábado" on a phone line."""
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


def plain(text: str) -> str:
    """Whisper's text as grammar words are spelt: lower case, no punctuation."""
    return " ".join(_WORD.findall(normalise(text)))


_WORD = re.compile(r"[^\W_]+")


def _softmax(scores: np.ndarray) -> np.ndarray:
    top = scores.max()
    weights = np.exp(scores - top)
    return weights / weights.sum()


def log_mel(speech: np.ndarray, n_mels: int = 80, frames: int = CHUNK_S * RATE // HOP) -> np.ndarray:
    """Whisper's input: log-mel spectrogram of ``speech`` then silence, [n_mels, frames] (3000:
    30 s, what Whisper was trained on). The silence after her word sits at the floor (8 below the
    loudest frame), so fewer frames give the values the first of 3000 would have."""
    padded = np.zeros(frames * HOP, np.float32)
    padded[: speech.size] = speech[: padded.size]
    framed = np.pad(padded, N_FFT // 2, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(framed, N_FFT)[::HOP]
    spectrum = np.abs(np.fft.rfft(windows * _hann(), axis=1)) ** 2
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

