"""The kiosk's inputs: gpiozero buttons and a 3x4 keypad (mock pins), evdev, the keyboard."""

import os
import queue
import time

import pytest

from audio_lessons.errors import ConfigError
from kiosk import buttons, usbkeypad
from kiosk.keyboard import Keyboard


class Collected:
    def __init__(self):
        self.items = queue.SimpleQueue()

    def put(self, item):
        self.items.put(item)

    def next(self, timeout=2.0):
        return self.items.get(timeout=timeout)


def names(items):
    return [f"{type(i).__name__}:{i.key}" for i in items]


@pytest.fixture
def factory():
    from gpiozero.pins.mock import MockFactory

    pins = MockFactory()
    yield pins
    pins.reset()


def test_gpio_buttons_put_presses_and_releases_on_the_inbox(factory):
    got = Collected()
    gpio = buttons.GpioButtons(got.put, buttons.parse_buttons(["5:17", "vol+:27", "talk:22"]),
                               pin_factory=factory)
    try:
        factory.pin(17).drive_low()  # pressed: wired to ground
        factory.pin(17).drive_high()
        factory.pin(22).drive_low()
        assert names([got.next(), got.next(), got.next()]) == ["Press:5", "Release:5",
                                                               "Press:talk"]
    finally:
        gpio.close()


@pytest.mark.parametrize("bad", [["5"], ["x:17"], ["5:17", "6:17"], ["5:gpio17"]])
def test_a_bad_pin_map_is_one_clear_message(bad):
    with pytest.raises(ConfigError, match="kiosk.buttons"):
        buttons.parse_buttons(bad)


def keypad_pins(factory, rows, cols):
    """Mock wiring of a matrix keypad: a column reads low while a pressed key's row is low.

    Returns ``press(keys)``: hold exactly those (row, column) keys. The pressed keys are replaced,
    never changed in place, as the keypad's own thread reads them while it scans."""
    from gpiozero.pins.mock import MockPin

    col_pins = [factory.pin(c) for c in cols]
    held = {"keys": frozenset()}

    def update():
        down = held["keys"]
        for c, pin in enumerate(col_pins):
            if pin.function != "input":
                continue
            low = any(row_pins[r].state is False or row_pins[r].state == 0
                      for r, cc in down if cc == c)
            pin.drive_low() if low else pin.drive_high()

    def press(keys=()):
        held["keys"] = frozenset(keys)
        update()

    class RowPin(MockPin):
        def _change_state(self, value):
            changed = super()._change_state(value)
            update()
            return changed

    row_pins = [factory.pin(r, pin_class=RowPin) for r in rows]
    return press


def test_the_matrix_keypad_finds_each_key_by_its_row_and_column(factory):
    got = Collected()
    rows, cols = [5, 6, 13, 19], [12, 16, 20]
    press = keypad_pins(factory, rows, cols)
    keypad = buttons.MatrixKeypad(got.put, rows, cols, pin_factory=factory)
    try:
        for r, c, key in [(0, 0, "1"), (1, 1, "5"), (3, 0, "*"), (3, 2, "#"), (2, 2, "9")]:
            press({(r, c)})
            assert names([got.next()]) == [f"Press:{key}"]
            press()
            assert names([got.next()]) == [f"Release:{key}"]
        assert all(row.value for row in keypad.rows)  # idle: every row held low again
    finally:
        keypad.close()


def test_an_idle_keypad_does_not_poll(factory):
    rows, cols = [5, 6, 13, 19], [12, 16, 20]
    keypad_pins(factory, rows, cols)
    keypad = buttons.MatrixKeypad(Collected().put, rows, cols, pin_factory=factory)
    try:
        before = [len(factory.pin(r).states) for r in rows]
        time.sleep(0.3)  # a polling scanner would have driven the rows a dozen times by now
        assert [len(factory.pin(r).states) for r in rows] == before
    finally:
        keypad.close()


def event(code, value):
    from evdev import InputEvent, ecodes

    return InputEvent(1, 0, ecodes.EV_KEY, code, value)


class GrabbableDevice:
    """An evdev device stand-in that yields real evdev InputEvents (no /dev/uinput here)."""

    name, path = "USB numeric keypad", "/dev/input/event9"

    def __init__(self, events):
        self.events, self.grabbed = events, False

    def grab(self):
        self.grabbed = True

    def ungrab(self):
        self.grabbed = False

    def read_loop(self):
        yield from self.events

    def close(self):
        pass


def test_usb_keypad_events_become_keys_and_the_device_is_grabbed():
    from evdev import ecodes as e

    got = Collected()
    device = GrabbableDevice([event(e.KEY_KP3, 1), event(e.KEY_KP3, 2), event(e.KEY_KP3, 0),
                              event(e.KEY_KPASTERISK, 1), event(e.KEY_KPENTER, 1),
                              event(e.KEY_KPPLUS, 1), event(e.KEY_A, 1),
                              type("Sync", (), {"type": e.EV_SYN, "code": 0, "value": 0})()])
    pad = usbkeypad.UsbKeypad(got.put, device)
    assert device.grabbed  # its presses never reach the console
    assert names([got.next() for _ in range(5)]) == ["Press:3", "Release:3", "Press:*",
                                                     "Press:talk", "Press:vol+"]
    pad.close()
    assert not device.grabbed


def test_a_real_usb_keypad_through_uinput():
    if not os.path.exists("/dev/uinput"):
        # Not require(): this VM's kernel is built without uinput (CONFIG_INPUT_UINPUT unset),
        # so no CI machine of this kind can have it; the test runs where the device exists.
        pytest.skip("/dev/uinput absent: the kernel has no uinput module")
    from evdev import UInput
    from evdev import ecodes as e

    got = Collected()
    # UInput returns once its event node opens (evdev waits for udev itself): no sleep here.
    with UInput({e.EV_KEY: [e.KEY_KP0, e.KEY_KP5, e.KEY_KPENTER]}, name="pallay test keypad") as ui:
        pad = usbkeypad.UsbKeypad(got.put, usbkeypad.find_keypad(ui.device.path))
        for code in (e.KEY_KP5, e.KEY_KP0):
            ui.write(e.EV_KEY, code, 1)
            ui.write(e.EV_KEY, code, 0)
            ui.syn()
        assert names([got.next() for _ in range(4)]) == ["Press:5", "Release:5", "Press:0",
                                                         "Release:0"]
        pad.close()


def test_keys_typed_on_standard_input_reach_the_inbox():
    got = Collected()
    read, write = os.pipe()
    Keyboard(got.put, fd=read).start()
    os.write(write, b"3*#\n+x")
    os.close(write)
    items = [got.next() for _ in range(10)]
    assert names(items[::2]) == ["Press:3", "Press:*", "Press:#", "Press:talk", "Press:vol+"]
