"""The keyboard on standard input, for development: digits, ``*`` and ``#``; Enter is the talk
button; ``+`` and ``-`` the volume.

On a terminal the keys act at once (cbreak mode, restored at exit); from a pipe each character
is a key press, which is how the tests and a scripted demo drive a kiosk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable

from kiosk.inbox import KEYS, TALK, VOLUME_DOWN, VOLUME_UP, Press, Release

log = logging.getLogger(__name__)
CHARS = {**{k: k for k in KEYS}, "\n": TALK, "\r": TALK, "+": VOLUME_UP, "-": VOLUME_DOWN}


class Keyboard:
    """Reads standard input on its own thread; each key becomes a Press and a Release."""

    def __init__(self, put: Callable, fd: int | None = None):
        self.put = put
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._saved = None
        self._thread = threading.Thread(target=self._read, name="keyboard", daemon=True)

    def start(self) -> Keyboard:
        if os.isatty(self.fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._saved is not None:
            import termios

            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 64)
            except OSError as exc:
                log.info("keyboard: standard input unreadable (%s)", exc)
                return
            if not data:
                log.info("keyboard: standard input closed")
                return
            for char in data.decode("utf-8", "replace"):
                if key := CHARS.get(char):
                    self.put(Press(key))
                    self.put(Release(key))
