"""Loudness: ITU-R BS.1770 integrated loudness and normalisation with a look-ahead peak limiter.

Lessons recorded on different phones must play at one level: a quiet recording is raised to the
target and its peaks limited, so the miner never has to reach for the volume between lessons.
"""

from __future__ import annotations

import math

import numpy as np

MAX_LIMITING_DB = 6.0  # beyond this much peak limiting, lower the whole gain instead
# When sound stops dead (digital silence between sentences) the filters' state decays into
# subnormal floats, which the CPU handles many times slower: a 10-minute lesson took 0.3 s to
# filter instead of 0.06 s. A signal at -240 dBFS, 170 dB under the absolute gate, keeps the state
# normal without changing the measurement.
SUBNORMAL_GUARD = np.float32(1e-12)


def integrated_loudness(pcm: np.ndarray, rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness (LUFS) of mono float samples; -inf if all gated."""
    from scipy.signal import sosfilt

    x = pcm.astype(np.float32)  # a copy: the guard is added to it, never to the caller's audio
    x[0::2] += SUBNORMAL_GUARD
    x[1::2] -= SUBNORMAL_GUARD
    y = sosfilt(k_weighting(rate).astype(np.float32), x)
    # 400 ms blocks every 100 ms: sum squares per 100 ms step once, then add four neighbours.
    step = round(0.1 * rate)
    n = len(y) // step
    if n < 4:
        return -math.inf
    steps = y[: n * step].reshape(n, step)
    energy = np.einsum("ij,ij->i", steps, steps, dtype=np.float64)
    z = (energy[:-3] + energy[1:-2] + energy[2:-1] + energy[3:]) / (4 * step)
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10 * np.log10(z)
    z, lk = z[lk > -70.0], lk[lk > -70.0]
    if len(z) == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(z.mean()) - 10.0
    return -0.691 + 10 * math.log10(z[lk > relative].mean())


def k_weighting(rate: int) -> np.ndarray:
    """The two BS.1770 biquads (high shelf, then high pass) designed for any sample rate."""
    def biquad(kind: str, gain_db: float, q: float, fc: float) -> list[float]:
        a = 10 ** (gain_db / 40)
        w0 = 2 * math.pi * fc / rate
        alpha, cw = math.sin(w0) / (2 * q), math.cos(w0)
        if kind == "shelf":
            sa = 2 * math.sqrt(a) * alpha
            b = [a * ((a + 1) + (a - 1) * cw + sa), -2 * a * ((a - 1) + (a + 1) * cw),
                 a * ((a + 1) + (a - 1) * cw - sa)]
            den = [(a + 1) - (a - 1) * cw + sa, 2 * ((a - 1) - (a + 1) * cw),
                   (a + 1) - (a - 1) * cw - sa]
        else:
            b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
            den = [1 + alpha, -2 * cw, 1 - alpha]
        return [c / den[0] for c in b + den]

    return np.array([biquad("shelf", 4.0, 1 / math.sqrt(2), 1500.0),
                     biquad("pass", 0.0, 0.5, 38.0)])


def normalise(y: np.ndarray, rate: int, target_lufs: float, peak_dbfs: float,
               loudness: float | None = None) -> np.ndarray:
    """Gain to ``target_lufs``, then a look-ahead limiter so no sample passes ``peak_dbfs``."""
    if loudness is None:
        loudness = integrated_loudness(y, rate)
    z = y * np.float32(10 ** ((target_lufs - loudness) / 20))
    limit = 10 ** (peak_dbfs / 20) * 0.999
    peak = max(float(z.max()), -float(z.min()))
    if peak <= limit:
        return z
    magnitude = np.abs(z)
    over_db = 20 * math.log10(peak / limit)
    if over_db > MAX_LIMITING_DB:  # heavy limiting pumps: give up some loudness instead
        shrink = np.float32(10 ** (-(over_db - MAX_LIMITING_DB) / 20))
        z *= shrink
        magnitude *= shrink
    _limit_peaks(z, magnitude, limit, 2 * int(rate * 0.0025) + 1)
    return z


def _limit_peaks(z: np.ndarray, magnitude: np.ndarray, limit: float, width: int) -> None:
    """Scale ``z`` in place around each run of samples above ``limit``."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    over = np.flatnonzero(magnitude > limit)
    if len(over) == 0:
        return
    gaps = np.flatnonzero(np.diff(over) > 2 * width)
    for first, last in zip(over[np.r_[0, gaps + 1]], over[np.r_[gaps, len(over) - 1]]):
        a, b = max(0, first - 2 * width), min(len(z), last + 2 * width + 1)
        need = np.minimum(1.0, limit / np.maximum(magnitude[a:b], 1e-12)).astype(np.float32)
        # The moving average of a moving minimum (same window) never exceeds the gain any
        # sample needs, so peaks stay under the limit while the gain moves smoothly (~5 ms).
        z[a:b] *= uniform_filter1d(minimum_filter1d(need, width), width)
