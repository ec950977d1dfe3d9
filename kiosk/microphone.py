"""The microphone (sounddevice, 16 kHz mono), end-of-speech detection and message files.

The input callback copies each block onto the controller's inbox and returns. A message is
written as ``<name>.wav.part`` and renamed to ``<name>.wav`` only once complete and on disk, so a
power cut during a recording leaves a ``.part`` that the next start removes, never a
half-written message.
"""

from __future__ import annotations

import logging
import os
import uuid
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audio_lessons import media
from kiosk.inbox import Sound

log = logging.getLogger(__name__)
FRAME_S = 0.03  # loudness is judged per 30 ms
SPEECH_DBFS = -40.0  # louder than this (and well above the room's floor) is speech
FLOOR_MARGIN_DB = 12.0


class Microphone:
    """Opens the input device on demand; blocks arrive as ``Sound`` items."""

    def __init__(self, put: Callable[[Sound], None], device: str | int | None = None,
                 rate: int = 16000, latency_s: float = 0.05):
        self.put, self.device, self.rate, self.latency_s = put, device, rate, latency_s
        self._stream = None
        self.token = 0

    def open(self) -> int:
        """Start capturing; returns the token the ``Sound`` items of this opening carry."""
        import sounddevice as sd

        self.close()
        self.token += 1
        token = self.token

        def callback(indata, frames, time_info, status) -> None:
            self.put(Sound(indata[:, 0].copy(), token))

        self._stream = sd.InputStream(samplerate=self.rate, channels=1, dtype="int16",
                                      device=self.device, latency=self.latency_s,
                                      callback=callback)
        self._stream.start()
        return token

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abort()
            stream.close()


def find(device: str) -> str | int | None | bool:
    """The input device to use: its PortAudio name/number, None for the default, False if none.

    Logged once: a kiosk without a microphone works with keys only.
    """
    if device.strip().lower() == "none":
        log.info("voice off, keys only: the microphone is turned off ([kiosk] input_device)")
        return False
    import sounddevice as sd

    chosen: str | int | None = int(device) if device.isdigit() else device or None
    try:
        sd.check_input_settings(device=chosen, channels=1, dtype="int16")
    except (sd.PortAudioError, ValueError) as exc:  # no such device, or it cannot record
        log.warning("voice off, keys only: no usable microphone (%s)", exc)
        return False
    return chosen


class Loudness:
    """Tells speech from the room's noise, 30 ms at a time, with an adaptive floor."""

    def __init__(self, rate: int):
        self.frame = int(rate * FRAME_S)
        self.floor = -90.0
        self._pending = np.zeros(0, np.int16)

    def frames(self, samples: np.ndarray) -> list[bool]:
        """For each complete 30 ms frame in ``samples`` (and what was left over): speech?"""
        data = np.concatenate([self._pending, samples])
        n = len(data) // self.frame
        self._pending = data[n * self.frame:]
        return [self._is_speech(data[i * self.frame:(i + 1) * self.frame]) for i in range(n)]

    def _is_speech(self, frame: np.ndarray) -> bool:
        rms = np.sqrt(np.mean(frame.astype(np.float64) ** 2)) + 1e-9
        db = 20 * np.log10(rms / 32768)
        # the floor follows the quietest frames quickly and louder ones slowly
        self.floor = db if db < self.floor else self.floor + 0.02 * (db - self.floor)
        return db > SPEECH_DBFS and db > self.floor + FLOOR_MARGIN_DB


class MessageFile:
    """A message being recorded at ``rate`` into ``folder``."""

    def __init__(self, folder: Path, rate: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"message-kiosk-{uuid.uuid4().hex}.wav"
        self.part = self.path.with_name(self.path.name + ".part")
        self.rate = rate
        self.frames = 0
        self._wav = wave.open(str(self.part), "wb")  # noqa: SIM115 - open until finish()
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)

    @property
    def duration_ms(self) -> int:
        return self.frames * 1000 // self.rate

    def write(self, samples: np.ndarray) -> None:
        self._wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())
        self.frames += len(samples)

    def finish(self) -> Path:
        """Close, flush to disk and give the file its final name (atomically)."""
        self._wav.close()
        with open(self.part, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.part, self.path)
        media.fsync_dir(self.path.parent)
        return self.path


