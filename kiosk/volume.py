"""The speaker volume: changed with the volume keys and remembered across restarts and power cuts."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
MIN_LEVEL = 0.1  # never silent: a kiosk nobody can hear looks broken


class Volume:
    """A level between MIN_LEVEL and 1, kept in a one-line file written atomically."""

    def __init__(self, path: Path, default: float, step: float,
                 on_change: Callable[[float], None] = lambda level: None):
        self.path, self.step, self.on_change = path, step, on_change
        self.level = _clamp(self._load(default))
        on_change(self.level)

    def change(self, direction: int) -> float:
        """One step up (+1) or down (-1); returns the new level."""
        self.level = _clamp(round(self.level + direction * self.step, 3))
        self.on_change(self.level)
        self._save()
        log.info("volume %.0f %%", self.level * 100)
        return self.level

    def _load(self, default: float) -> float:
        try:
            return float(self.path.read_text().strip())
        except (OSError, ValueError):
            return default

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "w") as f:
                f.write(f"{self.level}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:  # a read-only or full disk must not stop the volume keys
            log.warning("volume not remembered: %s", exc)


def _clamp(level: float) -> float:
    return min(1.0, max(MIN_LEVEL, level))
