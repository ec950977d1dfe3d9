"""The speaker: one clip at a time through PortAudio (sounddevice), started and stopped at once.

The audio callback only copies samples (scaled by the volume) and counts underflows; the end of a
clip reaches the controller as ``Played`` through the inbox. A stream is opened per clip: an idle
kiosk then costs no CPU, and a device that went away (a USB DAC pulled) is found again at the next
clip instead of killing a long-lived stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from kiosk.inbox import Played

log = logging.getLogger(__name__)


class Player:
    """Plays int16 mono clips on an output device; ``start`` returns at once."""

    def __init__(self, on_event: Callable[[Played], None], device: str | int | None = None,
                 latency_s: float = 0.05, volume: float = 0.8):
        self.on_event = on_event
        self.device = device
        self.latency_s = latency_s
        self.volume = volume
        self.underflows = 0
        self.first_sample_at: float | None = None  # when the callback first copied clip samples
        self._stream = None
        self._token = 0
        self._lock = threading.Lock()  # start/stop come from the controller; this guards _stream
        self._clip = np.zeros(0, np.int16)
        self._pos = 0
        self._rate = 0

    @property
    def playing(self) -> bool:
        return self._stream is not None

    def start(self, clip: np.ndarray, rate: int, start_frame: int = 0) -> int:
        """Start playing ``clip`` at ``start_frame``; returns the token its ``Played`` will carry."""
        import sounddevice as sd

        self.stop()
        with self._lock:
            self._token += 1
            token = self._token
            self._clip, self._pos, self._rate = clip, max(0, start_frame), rate
            self.first_sample_at = None
            stream = sd.OutputStream(
                samplerate=rate, channels=1, dtype="int16", device=self.device,
                latency=self.latency_s, callback=self._callback,
                finished_callback=lambda: self._finished(token))
            self._stream = stream
            self._ended = False
            stream.start()
        return token

    def stop(self) -> int:
        """Stop at once; the frame the listener had reached (samples still buffered excluded)."""
        with self._lock:
            stream, self._stream = self._stream, None
            if stream is None:
                return self._pos
            buffered = 0 if self._ended else int(stream.latency * self._rate)
            stream.abort()
            stream.close()
        return max(0, min(len(self._clip), self._pos - buffered))

    def _callback(self, outdata, frames, time_info, status) -> None:
        import sounddevice as sd

        if status.output_underflow:
            self.underflows += 1
        pos = self._pos
        chunk = self._clip[pos:pos + frames]
        n = len(chunk)
        if n:
            if self.volume >= 0.999:
                outdata[:n, 0] = chunk
            else:
                np.multiply(chunk, self.volume, out=outdata[:n, 0], casting="unsafe")
            if self.first_sample_at is None:
                self.first_sample_at = time.monotonic()
        outdata[n:] = 0
        self._pos = pos + n
        if n < frames:
            self._ended = True
            raise sd.CallbackStop

    def _finished(self, token: int) -> None:
        """PortAudio's thread: the stream stopped (clip ended, or ``stop``); report a real end."""
        if self._ended:
            self.on_event(Played(token))
            if self.underflows:
                log.debug("playback %d: %d underflows so far", token, self.underflows)


def tone(rate: int, hz: float = 880.0, seconds: float = 0.2, dbfs: float = -12.0) -> np.ndarray:
    """The short beep before she speaks or records (faded in and out, so it does not click)."""
    t = np.arange(int(rate * seconds)) / rate
    wave = np.sin(2 * np.pi * hz * t) * (10 ** (dbfs / 20)) * 32767
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)
    return (wave * fade).astype(np.int16)
