"""A USB numeric keypad through evdev, grabbed so that its presses never reach a console.

Without the grab, every key would also be typed into the login prompt on the Pi's screen.
Keys: the digits, ``*``; ``/`` and ``.`` stand for ``#`` (numeric keypads have none); Enter is
the talk button; ``+`` and ``-`` the volume. Auto-repeat is ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from audio_lessons.errors import ConfigError
from kiosk.inbox import TALK, VOLUME_DOWN, VOLUME_UP, Press, Release

log = logging.getLogger(__name__)
KEY_DOWN, KEY_UP = 1, 0  # evdev key event values (2 is auto-repeat)


def keymap() -> dict[int, str]:
    """evdev key codes -> kiosk keys."""
    from evdev import ecodes as e

    keys = {getattr(e, f"KEY_KP{d}"): str(d) for d in range(10)}
    keys.update({getattr(e, f"KEY_{d}"): str(d) for d in range(10)})
    keys.update({e.KEY_KPASTERISK: "*", e.KEY_KPSLASH: "#", e.KEY_KPDOT: "#",
                 e.KEY_KPENTER: TALK, e.KEY_ENTER: TALK, e.KEY_KPPLUS: VOLUME_UP,
                 e.KEY_KPMINUS: VOLUME_DOWN})
    return keys


def translate(events: Iterable, keys: dict[int, str]):
    """Press and Release items for the key events among ``events`` (evdev InputEvents)."""
    from evdev import ecodes

    for event in events:
        if event.type != ecodes.EV_KEY or event.code not in keys:
            continue
        if event.value == KEY_DOWN:
            yield Press(keys[event.code])
        elif event.value == KEY_UP:
            yield Release(keys[event.code])


def find_keypad(path: str = ""):
    """The evdev device at ``path``, or the first one with a numeric keypad; ConfigError if none."""
    import evdev
    from evdev import ecodes

    if path:
        try:
            return evdev.InputDevice(path)
        except OSError as exc:
            raise ConfigError(f"kiosk.usb_keypad: cannot open {path}: {exc.strerror}") from exc
    for candidate in evdev.list_devices():
        try:
            device = evdev.InputDevice(candidate)
        except OSError:
            continue
        if ecodes.KEY_KP5 in device.capabilities().get(ecodes.EV_KEY, []):
            return device
        device.close()
    raise ConfigError("no USB numeric keypad found (is it plugged in? is pallay in the 'input' "
                      "group?)")


class UsbKeypad:
    """Reads one grabbed evdev device on its own thread."""

    def __init__(self, put: Callable, device):
        self.put, self.device = put, device
        self.keys = keymap()
        device.grab()
        log.info("USB keypad: %s (%s), grabbed", device.name, device.path)
        self._thread = threading.Thread(target=self._read, name="usb-keypad", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in translate(self.device.read_loop(), self.keys):
                self.put(item)
        except OSError as exc:  # unplugged: the other inputs keep working
            log.warning("USB keypad %s gone: %s", self.device.path, exc)

    def close(self) -> None:
        try:
            self.device.ungrab()
            self.device.close()
        except OSError:
            pass
