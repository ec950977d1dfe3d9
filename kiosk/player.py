"""The speaker: one clip at a time through PortAudio (sounddevice), switched at once.

One output stream stays open while a session runs (between clips it plays silence), so a key
that interrupts a prompt is heard within one audio block instead of waiting for a stream to be
torn down and opened again (measured here: closing a stream takes 30-90 ms); the controller
closes it when the kiosk goes idle, so an idle kiosk costs no CPU. The audio callback only copies
samples (scaled by the volume) and puts ``Played`` on the inbox when a clip ends: it never waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kiosk.inbox import Played

log = logging.getLogger(__name__)


@dataclass
class _Clip:
    """What the callback is playing; replaced whole (one assignment) by the controller."""

    samples: np.ndarray
    pos: int
    token: int
    done: bool = False


class Player:
    """Plays int16 mono clips on an output device; ``start`` returns at once."""

    def __init__(self, on_event: Callable[[Played], None], device: str | int | None = None,
                 latency_s: float = 0.05, volume: float = 0.8):
        self.on_event = on_event
        self.device = device
        self.latency_s = latency_s
        self.volume = volume
        self.underflows = 0
        self.first_sample_at: float | None = None  # when the callback first copied this clip
        self._stream = None
        self._rate = 0
        self._token = 0
        self._clip: _Clip | None = None

    @property
    def playing(self) -> bool:
        clip = self._clip
        return clip is not None and not clip.done

    def start(self, samples: np.ndarray, rate: int, start_frame: int = 0) -> int:
        """Play ``samples`` from ``start_frame`` (instead of whatever played); returns the token
        its ``Played`` will carry."""
        self._clip = None
        if self._stream is None or self._rate != rate:
            self._open(rate)
        self._token += 1
        self.first_sample_at = None
        self._clip = _Clip(samples, max(0, start_frame), self._token)
        return self._token

    def stop(self) -> int:
        """Silence at once; the frame the listener had reached (samples still buffered excluded)."""
        clip, self._clip = self._clip, None
        if clip is None:
            return 0
        if clip.done or self._stream is None:
            return min(clip.pos, len(clip.samples))
        buffered = int(self._stream.latency * self._rate)
        return max(0, min(len(clip.samples), clip.pos - buffered))

    def close(self) -> None:
        """Stop and release the device (the kiosk goes idle)."""
        self.stop()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abort()
            stream.close()

    def _open(self, rate: int) -> None:
        import sounddevice as sd

        self.close()
        self._stream = sd.OutputStream(samplerate=rate, channels=1, dtype="int16",
                                       device=self.device, latency=self.latency_s,
                                       callback=self._callback)
        self._rate = rate
        self._stream.start()

    def _callback(self, outdata, frames, time_info, status) -> None:
        if status.output_underflow:
            self.underflows += 1
        clip = self._clip
        n = 0
        if clip is not None and not clip.done:
            chunk = clip.samples[clip.pos:clip.pos + frames]
            n = len(chunk)
            if self.volume >= 0.999:
                outdata[:n, 0] = chunk
            else:
                np.multiply(chunk, self.volume, out=outdata[:n, 0], casting="unsafe")
            if n and self.first_sample_at is None:
                self.first_sample_at = time.monotonic()
            clip.pos += n
            if n < frames:
                clip.done = True
                self.on_event(Played(clip.token))  # SimpleQueue.put: never blocks
        outdata[n:] = 0


def tone(rate: int, hz: float = 880.0, seconds: float = 0.2, dbfs: float = -12.0) -> np.ndarray:
    """The short beep before she speaks or records (faded in and out, so it does not click)."""
    t = np.arange(int(rate * seconds)) / rate
    wave = np.sin(2 * np.pi * hz * t) * (10 ** (dbfs / 20)) * 32767
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)
    return (wave * fade).astype(np.int16)
