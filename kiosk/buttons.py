"""Big buttons and a 3x4 matrix keypad on the Raspberry Pi's GPIO pins, through gpiozero.

Buttons are wired between a pin and ground (internal pull-ups). The keypad's four row pins are
outputs held low and its three column pins inputs with pull-ups, so a press pulls its column low;
the edge wakes the keypad's own thread, which finds the row by driving one row low at a time.
Nothing polls while no key is down. gpiozero callbacks only put items on the controller's inbox
(or wake the keypad thread). Tests pass gpiozero's ``MockFactory`` as ``pin_factory``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from audio_lessons.errors import ConfigError
from kiosk.inbox import ALL_KEYS, Press, Release

log = logging.getLogger(__name__)
BOUNCE_S = 0.02
LAYOUT = ("123", "456", "789", "*0#")
HELD_POLL_S = 0.02  # while a keypad key is down: how often to look whether it is released


def parse_buttons(entries) -> dict[int, str]:
    """``("5:17", "vol+:27")`` as {pin: key}; ConfigError naming the bad entry."""
    pins: dict[int, str] = {}
    for entry in entries:
        key, _, pin = str(entry).rpartition(":")
        if key not in ALL_KEYS or not pin.isdigit():
            raise ConfigError(f"kiosk.buttons: {entry!r} is not KEY:PIN "
                              f"(KEY one of {' '.join(ALL_KEYS)}, PIN a BCM number)")
        if int(pin) in pins:
            raise ConfigError(f"kiosk.buttons: pin {pin} is used twice")
        pins[int(pin)] = key
    return pins


def parse_pins(entries, count: int, name: str) -> list[int]:
    pins = [str(p).strip() for p in entries]
    if len(pins) != count or not all(p.isdigit() for p in pins):
        raise ConfigError(f"kiosk.{name}: expected {count} BCM pin numbers, got {list(entries)}")
    return [int(p) for p in pins]


class GpioButtons:
    """One gpiozero Button per configured pin."""

    def __init__(self, put: Callable, pins: dict[int, str], pin_factory=None):
        from gpiozero import Button

        self.buttons = []
        for pin, key in pins.items():
            button = Button(pin, pull_up=True, bounce_time=BOUNCE_S, pin_factory=pin_factory)
            button.when_pressed = lambda key=key: put(Press(key))
            button.when_released = lambda key=key: put(Release(key))
            self.buttons.append(button)

    def close(self) -> None:
        for button in self.buttons:
            button.close()


class MatrixKeypad:
    """A 3x4 telephone keypad: rows and columns on GPIO pins, scanned only when a key is down."""

    def __init__(self, put: Callable, rows: list[int], cols: list[int], pin_factory=None):
        from gpiozero import Button, DigitalOutputDevice

        self.put = put
        # active_high=False: "on" drives the row low, which is what a press can then be seen on
        self.rows = [DigitalOutputDevice(p, active_high=False, initial_value=True,
                                         pin_factory=pin_factory) for p in rows]
        self.cols = [Button(p, pull_up=True, pin_factory=pin_factory) for p in cols]
        self._wake = threading.Event()
        self._closed = False
        for col in self.cols:
            col.when_pressed = self._wake.set
        self._thread = threading.Thread(target=self._watch, name="keypad", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=1)
        for device in (*self.rows, *self.cols):
            device.close()

    def _watch(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            key = self._scan()
            if key is None:
                continue  # a bounce, or released already
            self.put(Press(key))
            while not self._closed and self._scan() == key:
                time.sleep(HELD_POLL_S)  # scanning itself wakes the event: sleep instead
            self.put(Release(key))

    def _scan(self) -> str | None:
        """Which key is down: drive one row low at a time and look at the columns."""
        found = None
        for r, row in enumerate(self.rows):
            for other in self.rows:
                other.value = other is row
            for c, col in enumerate(self.cols):
                if col.is_pressed and found is None:
                    found = LAYOUT[r][c]
        for row in self.rows:
            row.on()  # all rows low again: any press wakes the thread
        return found
