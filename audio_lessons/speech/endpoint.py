"""Streaming with end-of-speech detection, shared by both engines.

A WebRTC voice-activity endpointer (shipped inside the pocketsphinx wheel) finds where speech
starts and stops; only speech frames (plus the endpointer's short lead-in) reach the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import numpy as np

from audio_lessons.speech import audio
from audio_lessons.speech.recognizer import Heard, rejected

log = logging.getLogger(__name__)

END_SILENCE_S = 0.3  # trailing non-speech that ends an utterance (word-internal stops are shorter)
MAX_SPEECH_S = 5.0  # a command word is short: decide (and most likely reject) after this


class Session(Protocol):
    """One utterance inside an engine: take samples at the engine's rate, then decide."""

    def accept(self, samples: np.ndarray) -> None: ...

    def result(self) -> Heard: ...


class Resampler:
    """Chunk-by-chunk resampling without clicks at chunk borders (soxr's streaming mode)."""

    def __init__(self, rate: int, target: int) -> None:
        self.rate, self.target = rate, target
        self._stream = None
        if rate != target:
            import soxr

            self._stream = soxr.ResampleStream(rate, target, 1, dtype="int16", quality="HQ")

    def __call__(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return chunk
        return self._stream.resample_chunk(chunk, last=last)


class EndpointStream:
    """A Stream: feed chunks at ``rate``; a Heard comes back when the speaker stops."""

    def __init__(self, open_session: Callable[[], Session], rate: int, engine_rate: int,
                 end_silence_s: float = END_SILENCE_S, max_speech_s: float = MAX_SPEECH_S) -> None:
        from pocketsphinx import Endpointer

        audio.check_clip(np.zeros(1, np.int16), rate)  # refuses a rate no engine takes
        self.rate = rate
        self._open = open_session
        self._ep = Endpointer(window=end_silence_s, ratio=0.9, sample_rate=rate, frame_length=0.03)
        self._frame = self._ep.frame_bytes
        self._pending = b""
        self._resample = Resampler(rate, engine_rate)
        self._session: Session | None = None
        self._speech_samples = 0
        self._clipped_samples = 0
        self._max_samples = int(max_speech_s * rate)
        self.decision: Heard | None = None

    def feed(self, chunk: np.ndarray) -> Heard | None:
        """Take samples; return the decision once, when end of speech is detected."""
        if self.decision is not None:
            return None
        chunk = np.asarray(chunk)
        if chunk.size == 0:
            return None
        self._pending += audio.check_clip(chunk, self.rate).astype("<i2").tobytes()
        while len(self._pending) >= self._frame:
            frame, self._pending = self._pending[: self._frame], self._pending[self._frame:]
            speech = self._ep.process(frame)
            if speech is not None:
                self._take(speech)
            if self._session is not None and not self._ep.in_speech:
                return self._close()
            if self._speech_samples >= self._max_samples:
                log.info("speech longer than %.1f s: deciding now", self._max_samples / self.rate)
                return self._close()
        return None

    def finish(self) -> Heard:
        """End of input: decide on what was heard (only silence -> a 'silence' rejection)."""
        if self.decision is not None:
            return self.decision
        if self._ep.in_speech:
            tail = self._ep.end_stream(self._pending)
            if tail:
                self._take(tail)
        self._pending = b""
        if self._session is None:
            self.decision = rejected("silence")
            return self.decision
        return self._close()

    def _take(self, speech: bytes) -> None:
        samples = np.frombuffer(speech, dtype="<i2")
        if self._session is None:
            self._session = self._open()
        self._speech_samples += samples.size
        self._clipped_samples += int(np.count_nonzero(np.abs(samples.astype(np.int32)) >= 32767))
        self._session.accept(self._resample(samples))

    def _close(self) -> Heard:
        assert self._session is not None
        self._session.accept(self._resample(np.zeros(0, np.int16), last=True))
        heard = self._session.result()
        if self._clipped_samples > audio.CLIPPED_SHARE * max(1, self._speech_samples):
            heard = rejected("clipped", heard.text, heard.confidence, heard.alternatives)
        self.decision = heard
        return heard
