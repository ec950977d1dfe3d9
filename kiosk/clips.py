"""The kiosk's sounds: the 22 kHz variants of prompts and lessons, read from the local media folder.

Clips are read whole into memory (never memory-mapped: a page fault inside the audio callback
would block it on the SD card) and kept in a small cache, since a kiosk plays the same few lessons
all day. Files are looked up by content hash at every play, so a sync that swaps the catalogue and
its media under a running kiosk is picked up at the next session.
"""

from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np

from audio_lessons import media

log = logging.getLogger(__name__)
CACHE_BYTES = 64_000_000  # about a dozen two-minute lessons


class ClipError(Exception):
    """A variant file is missing or is not 16-bit mono PCM WAV."""


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit mono PCM WAV file as (samples, rate), reading only the RIFF chunks it needs."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise ClipError(f"{path}: not a WAV file")
            rate = None
            while chunk := f.read(8):
                if len(chunk) < 8:
                    break
                name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"fmt ":
                    fmt = f.read(size + size % 2)
                    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
                    if (tag, channels, bits) != (1, 1, 16):
                        raise ClipError(f"{path}: not 16-bit mono PCM")
                elif name == b"data" and rate:
                    return np.fromfile(f, dtype="<i2", count=size // 2).astype(np.int16), rate
                else:
                    f.seek(size + size % 2, 1)
    except OSError as exc:
        raise ClipError(f"{path}: {exc.strerror}") from exc
    raise ClipError(f"{path}: no audio data")


class Clips:
    """Prompt and lesson clips by content hash (the "kiosk" variants)."""

    def __init__(self, media_dir: Path, rate: int, cache_bytes: int = CACHE_BYTES):
        self.media_dir, self.rate, self.cache_bytes = Path(media_dir), rate, cache_bytes
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, hash_: str) -> np.ndarray:
        """The samples of one variant at ``self.rate``; ClipError if it cannot be played."""
        if hash_ in self._cache:
            self._cache.move_to_end(hash_)
            return self._cache[hash_]
        samples, rate = read_wav(media.variant_path(self.media_dir, hash_, "kiosk"))
        if rate != self.rate:
            samples = resample(samples, rate, self.rate)
        self._cache[hash_] = samples
        while sum(c.nbytes for c in self._cache.values()) > self.cache_bytes and len(self._cache) > 1:
            self._cache.popitem(last=False)
        return samples

    def joined(self, hashes) -> np.ndarray:
        """Several prompts as one clip, played without gaps."""
        clips = [self.get(h) for h in hashes]
        return np.concatenate(clips) if clips else np.zeros(0, np.int16)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """A clip at another rate (a recorded message, or media prepared with another kiosk rate)."""
    import soxr

    return soxr.resample(samples, rate, target).astype(np.int16)
