"""The controller's one queue and what it carries: presses, releases, sound, a playback's end.

Input callbacks (GPIO, USB keypad, keyboard) and audio callbacks only ``put``: it never blocks.
Only the controller thread calls ``get``, which also keeps the systemd watchdog fed while it waits.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

DIGITS = "0123456789"
KEYS = DIGITS + "*#"  # what the engine may be asked for ("*" never reaches it)
END_KEY = "*"  # ends the session at any moment: the kiosk goes back to idle
VOLUME_UP, VOLUME_DOWN, TALK = "vol+", "vol-", "talk"
ALL_KEYS = (*KEYS, VOLUME_UP, VOLUME_DOWN, TALK)


@dataclass(frozen=True)
class Press:
    key: str
    at: float = field(default_factory=time.monotonic)  # when the input saw it (benchmarks)


@dataclass(frozen=True)
class Release:
    key: str


@dataclass(frozen=True)
class Played:
    """Playback number ``token`` reached the end of its clip."""

    token: int


@dataclass(frozen=True)
class Sound:
    """A block of microphone samples (int16 mono) from the input callback."""

    samples: np.ndarray
    token: int  # which microphone opening it belongs to


@dataclass(frozen=True)
class Stop:
    """Shut down (SIGTERM, Ctrl-C): the session in progress ends as a hang-up."""


Item = Press | Release | Played | Sound | Stop


class Inbox:
    """A queue with one reader; ``get`` calls ``heartbeat`` at least every ``beat_s`` it waits."""

    def __init__(self, heartbeat: Callable[[], None] = lambda: None, beat_s: float = 1.0):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.heartbeat, self.beat_s = heartbeat, beat_s
        self._last_beat = time.monotonic()

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def get(self, timeout: float | None = None) -> Item | None:
        """The next item, or None once ``timeout`` seconds passed (None: wait for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if now - self._last_beat >= self.beat_s:
                self._last_beat = now
                self.heartbeat()
            wait = self.beat_s if deadline is None else min(self.beat_s, deadline - now)
            if wait <= 0:
                return None
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                continue
