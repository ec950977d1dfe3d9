"""Clips for the recognisers: read, check, resample.

A clip is a mono ``numpy.int16`` array plus its sample rate. Every recogniser checks its input
with :func:`check_clip` so bad audio raises :class:`SpeechError` (or ends as a rejection),
never reaches a grammar that would turn it into a command.
"""

from __future__ import annotations

import io
import logging
import wave
from pathlib import Path

import numpy as np

from audio_lessons.errors import SpeechError

log = logging.getLogger(__name__)

RATES = (8000, 16000)  # phone line and kiosk microphone
SILENCE_DBFS = -55.0  # a clip whose loudest 30 ms is quieter than this holds no speech
CLIPPED_SHARE = 0.01  # more than 1% of samples at full scale: the input is saturated


def read_wav(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV file (path or bytes) as (samples, rate); stereo is refused."""
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise SpeechError(f"No se pudo leer el audio: {exc.strerror}.") from exc
    if not data:
        raise SpeechError("El audio está vacío (0 bytes).")
    try:
        with wave.open(io.BytesIO(data)) as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SpeechError("El archivo no es audio WAV.") from exc
    if width != 2:
        raise SpeechError(f"El audio debe ser PCM de 16 bits, no de {8 * width} bits.")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if channels != 1:
        raise SpeechError(f"El audio debe ser mono, no de {channels} canales.")
    return samples, rate


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write a mono 16-bit WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def check_clip(samples: np.ndarray, rate: int) -> np.ndarray:
    """Return the clip as a 1-D int16 array, or raise SpeechError for input no engine should hear.

    Silence is *not* an error here (streams are mostly silence); see :func:`is_silent`.
    """
    if rate not in RATES:
        raise SpeechError(f"Frecuencia de muestreo no admitida: {rate} Hz (use 8000 o 16000).")
    arr = np.asarray(samples)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise SpeechError("El audio debe ser mono (un solo canal).")
    if arr.dtype != np.int16:
        raise SpeechError(f"El audio debe ser de 16 bits con signo, no {arr.dtype}.")
    if arr.size == 0:
        raise SpeechError("El audio está vacío (0 muestras).")
    return arr


def is_silent(samples: np.ndarray, rate: int) -> bool:
    """True when no 30 ms stretch of the clip rises above SILENCE_DBFS."""
    return loudest_dbfs(samples, rate) < SILENCE_DBFS


def loudest_dbfs(samples: np.ndarray, rate: int) -> float:
    """Level of the loudest 30 ms window, in dB relative to full scale."""
    win = max(1, int(rate * 0.03))
    x = samples.astype(np.float64) / 32768.0
    n = len(x) // win
    if n == 0:
        rms = np.sqrt(np.mean(x**2)) if len(x) else 0.0
    else:
        rms = np.sqrt(np.mean(x[: n * win].reshape(n, win) ** 2, axis=1)).max()
    return float(20 * np.log10(max(rms, 1e-10)))


def is_clipped(samples: np.ndarray) -> bool:
    """True when the clip is saturated (many samples at full scale): distorted speech."""
    if samples.size == 0:
        return False
    full = np.count_nonzero(np.abs(samples.astype(np.int32)) >= 32767)
    return full / samples.size > CLIPPED_SHARE


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample int16 audio with soxr (high quality), keeping int16."""
    if rate == target:
        return samples
    import soxr

    out = soxr.resample(samples.astype(np.float32) / 32768.0, rate, target, quality="HQ")
    return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)


def add_noise(samples: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Add white noise at ``snr_db`` below the speech level (RMS of the non-silent part).

    For tests and the benchmark: synthetic speech with digital silence is unnaturally clean.
    """
    x = samples.astype(np.float64)
    active = x[np.abs(x) > 0.02 * np.abs(x).max()] if x.size and np.abs(x).max() > 0 else x
    level = np.sqrt(np.mean(active**2)) if active.size else 0.0
    noise = np.random.default_rng(seed).normal(0.0, level / (10 ** (snr_db / 20)), x.size)
    return np.clip(np.round(x + noise), -32768, 32767).astype(np.int16)
