"""Synthetic speech for checking keywords (and for tests): espeak-ng in a child process."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from audio_lessons.errors import SpeechError
from audio_lessons.speech import audio

VOICES = ("roa/es", "roa/es-419")


def available() -> bool:
    """True when the espeak-ng program is installed."""
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "roa/es-419", speed: int = 150, rate: int = 16000,
          pad_s: float = 0.3, timeout: float = 20.0) -> np.ndarray:
    """Render ``text`` as int16 mono at ``rate``, with ``pad_s`` of silence on each side."""
    if not available():
        raise SpeechError("Falta espeak-ng (apt-get install espeak-ng).")
    try:
        done = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                              capture_output=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired as exc:
        raise SpeechError("espeak-ng no respondió a tiempo.") from exc
    except subprocess.CalledProcessError as exc:
        raise SpeechError(f"espeak-ng falló: {exc.stderr.decode(errors='replace')[:200]}") from exc
    data = done.stdout
    # espeak-ng streams a WAV whose size fields are left unset: read the rate, skip the header.
    if len(data) < 44 or data[:4] != b"RIFF":
        raise SpeechError("espeak-ng no devolvió audio WAV.")
    src_rate = int.from_bytes(data[24:28], "little")
    samples = np.frombuffer(data[44: 44 + (len(data) - 44) // 2 * 2], dtype="<i2")
    pad = np.zeros(int(pad_s * rate), np.int16)
    return np.concatenate([pad, audio.resample(samples.astype(np.int16), src_rate, rate), pad])
