"""What a caller heard: reading Asterisk's recordings and finding a known sound in them.

Files play bit-exact on Local channels, so a prompt or lesson is found in a recording by matching
its opening 200 ms (normalised cross-correlation); its own leading silence never counts.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 8000
FRAME = 160  # 20 ms
TEMPLATE = 1600  # samples of a file's opening sound matched in a recording (200 ms)


def samples_of(path: str | Path) -> np.ndarray:
    path = str(path)
    with wave.open(path if path.endswith(".wav") else path + ".wav") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def seconds_of(paths) -> float:
    return sum(len(samples_of(p)) for p in paths) / RATE


def opening(path: str | Path) -> tuple[int, np.ndarray]:
    """Where a file's sound starts (first 20 ms frame above -40 dBFS), and its opening 200 ms."""
    x = samples_of(path)
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 32768 * 0.01)
    lead = int(loud[0]) * FRAME
    return lead, x[lead: lead + TEMPLATE]


def find(heard: np.ndarray, template: np.ndarray, since: int, until: int) -> tuple[int, float]:
    """Best normalised match of ``template`` in ``heard[since:until]``: (start sample, score)."""
    window = heard[max(since, 0): min(until, len(heard))]
    if len(window) < len(template):
        return -1, 0.0
    n = len(window) + len(template)
    size = 1 << (n - 1).bit_length()
    dots = np.fft.irfft(np.fft.rfft(window, size) * np.conj(np.fft.rfft(template, size)), size)
    dots = dots[: len(window) - len(template) + 1]
    energy = np.convolve(window ** 2, np.ones(len(template)), "valid")
    score = dots / (np.sqrt(np.maximum(energy, 1e-9)) * np.linalg.norm(template))
    best = int(np.argmax(score))
    return max(since, 0) + best, float(score[best])


def onset_seconds(recording: str | Path, sound: str | Path) -> float | None:
    """When ``sound`` is first heard in ``recording`` (seconds from its start), or None."""
    lead, template = opening(sound)
    found, score = find(samples_of(recording), template, 0, 10 ** 9)
    return (found - lead) / RATE if score >= 0.9 else None
