"""Her spoken answer on the line: when it ends (the core's endpointer) and what is recognised.

The endpointer is the one the core's streaming recognisers use (``EndpointStream``: WebRTC voice
activity, ``END_SILENCE_S`` of trailing non-speech ends it), fed the line's 8 kHz audio as it
arrives; it decides within about 0.4 s of her last sound. The recogniser then gets her words with
some context, not only the endpointer's speech frames: PocketSphinx, on Asterisk's recorded digits
at 20 dB SNR (30 clips per case), was right on 11 of 30 with the speech frames alone, 16 with
everything up to the end, 21 with a RECORD FILE-like second of silence after it, and 20 with 0.8 s
before her first speech frame plus 0.7 s of her own line noise after the end (LEAD_S, TAIL_S);
with 1.5 s of waiting before she spoke, 9, 13 and 18. Padding with digital silence instead: 12.
"""

from __future__ import annotations

import numpy as np

from audio_lessons.driver import Utterance
from audio_lessons.speech.endpoint import EndpointStream
from audio_lessons.speech.recognizer import Heard, rejected

RATE = 8000
LEAD_S = 0.8  # kept before the endpointer's first speech frame (which lags her onset by ~0.3 s)
TAIL_S = 0.7  # of her line noise appended after the end
NOISE_S = 0.2  # the end's last stretch, non-speech by the endpointer's own decision


class _Speech:
    """The endpointer's engine session: it only notes that speech began (the line keeps all)."""

    def __init__(self, answer: Answer):
        answer.speech_at = answer.fed

    def accept(self, samples: np.ndarray) -> None:
        pass

    def result(self) -> Heard:
        return rejected("")  # the driver's recogniser decides, on the whole utterance


class Answer:
    """Feed the line's audio; ``feed`` is True once she has stopped; then ``utterance()``.

    Construct it off the event loop the first time (it imports pocketsphinx).
    """

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.fed = 0
        self.speech_at: int | None = None
        self.ended = False
        self._stream = EndpointStream(lambda: _Speech(self), RATE, RATE)

    def feed(self, samples: np.ndarray) -> bool:
        if self.ended or not samples.size:
            return self.ended
        self.chunks.append(samples)
        self.fed += samples.size
        self.ended = self._stream.feed(samples) is not None
        return self.ended

    def utterance(self) -> Utterance | None:
        """What the recogniser gets; None when she said nothing."""
        if self.speech_at is None:
            return None
        heard = np.concatenate(self.chunks).astype(np.int16)
        words = heard[max(0, self.speech_at - int(LEAD_S * RATE)):]
        if not self.ended:  # cut by the time limit mid-word: no noise to repeat
            return Utterance(words, RATE)
        noise = heard[-int(NOISE_S * RATE):]
        return Utterance(np.concatenate([words, np.resize(noise, int(TAIL_S * RATE))]), RATE)
