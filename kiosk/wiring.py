"""Builds a kiosk from its settings: store, speaker, microphone, recogniser and inputs.

Inputs named in ``[kiosk] keys`` (or ``--keys``) must work, or the kiosk refuses to start with
one clear message; ``auto`` takes every input that is present and says in the log which.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

from audio_lessons import speech
from audio_lessons.config import Settings
from audio_lessons.errors import ConfigError
from kiosk import buttons, microphone, recovery, usbkeypad
from kiosk.attract import Attract
from kiosk.clips import Clips
from kiosk.controller import Kiosk
from kiosk.inbox import Inbox
from kiosk.keyboard import Keyboard
from kiosk.media import KioskMedia
from kiosk.player import Player
from kiosk.volume import Volume
from kiosk.watchdog import Notifier

log = logging.getLogger(__name__)
INPUTS = ("keyboard", "gpio", "keypad", "usb")
TALK_MODES = ("hold", "press", "open", "off")


@dataclass
class Box:
    """A built kiosk and the inputs feeding it (closed by ``close``)."""

    kiosk: Kiosk
    inputs: list = field(default_factory=list)

    def close(self) -> None:
        for source in self.inputs:
            source.close()
        self.kiosk.db.close()


def check(settings: Settings) -> None:
    """Validate the [kiosk] settings once, with one clear message (ConfigError)."""
    k = settings.kiosk
    if k.talk not in TALK_MODES:
        raise ConfigError(f"kiosk.talk: expected one of {', '.join(TALK_MODES)}, got {k.talk!r}")
    if k.latency_ms < 5 or not 0 < k.volume <= 1 or not 0 < k.volume_step <= 0.5:
        raise ConfigError("kiosk: latency_ms must be at least 5, volume in (0, 1], "
                          "volume_step in (0, 0.5]")
    Attract.from_settings(k)
    buttons.parse_buttons(k.buttons)
    if k.keypad_rows or k.keypad_cols:
        buttons.parse_pins(k.keypad_rows, 4, "keypad_rows")
        buttons.parse_pins(k.keypad_cols, 3, "keypad_cols")


def build(settings: Settings, keys: tuple[str, ...] | None = None, voice: bool = True,
          recognizer=None, notifier: Notifier | None = None, observer=None) -> Box:
    """Open everything a kiosk needs; ``recognizer`` overrides the configured one (tests)."""
    check(settings)
    k = settings.kiosk
    notifier = notifier or Notifier()
    inbox = Inbox(heartbeat=notifier.ping, beat_s=min(1.0, notifier.interval_s))
    db = recovery.open_store(settings)
    recovery.tidy_spool(settings, db)
    player = Player(inbox.put, _device(k.output_device), k.latency_ms / 1000)
    volume = Volume(settings.data_dir / "kiosk-volume", k.volume, k.volume_step,
                    on_change=lambda level: setattr(player, "volume", level))
    mic, recognizer = _voice(settings, inbox, voice, recognizer)
    media = KioskMedia(inbox, player, Clips(settings.media_dir, settings.media.kiosk_rate),
                       volume, settings, mic)
    media.voice = recognizer is not None
    kiosk = Kiosk(settings, db, inbox, media, recognizer=recognizer, notifier=notifier,
                  observer=observer)
    box = Box(kiosk)
    try:
        box.inputs = start_inputs(k.keys if keys is None else keys, settings, inbox.put)
    except Exception:
        db.close()
        raise
    return box


def _device(setting: str) -> str | int | None:
    return int(setting) if setting.isdigit() else setting or None


def _voice(settings: Settings, inbox: Inbox, wanted: bool, recognizer):
    """(microphone, recogniser), or (microphone or None, None): keys only, said once in the log.

    The microphone is opened for messages even when no recogniser listens.
    """
    k = settings.kiosk
    found = microphone.find(k.input_device)
    mic = None if found is False else microphone.Microphone(inbox.put, found, k.mic_rate,
                                                            k.latency_ms / 1000)
    if not wanted or k.talk == "off":
        log.info("voice off, keys only: turned off (%s)", "--no-voice" if not wanted else
                 "[kiosk] talk = off")
        return mic, None
    if mic is None:
        return None, None
    recognizer = recognizer or speech.from_settings(settings)
    return mic, recognizer


def start_inputs(names, settings: Settings, put) -> list:
    """Start the named inputs ("auto": every one present)."""
    names = [n.strip() for n in names if n.strip()]
    unknown = sorted(set(names) - {*INPUTS, "auto"})
    if unknown:
        raise ConfigError(f"unknown input {', '.join(unknown)}: use {', '.join(INPUTS)} or auto")
    if "auto" in names:
        return _auto_inputs(settings, put)
    return [_start(name, settings, put) for name in dict.fromkeys(names)]


def _start(name: str, settings: Settings, put):
    k = settings.kiosk
    if name == "keyboard":
        return Keyboard(put).start()
    if name == "gpio":
        pins = buttons.parse_buttons(k.buttons)
        if not pins:
            raise ConfigError("gpio inputs asked for, but [kiosk] buttons names no pin")
        return buttons.GpioButtons(put, pins)
    if name == "keypad":
        rows = buttons.parse_pins(k.keypad_rows, 4, "keypad_rows")
        return buttons.MatrixKeypad(put, rows, buttons.parse_pins(k.keypad_cols, 3, "keypad_cols"))
    return usbkeypad.UsbKeypad(put, usbkeypad.find_keypad(k.usb_keypad))


def _auto_inputs(settings: Settings, put) -> list:
    k = settings.kiosk
    wanted = [name for name, present in (
        ("keyboard", os.isatty(sys.stdin.fileno()) if sys.stdin else False),
        ("gpio", bool(k.buttons)), ("keypad", bool(k.keypad_rows)), ("usb", True)) if present]
    started = []
    for name in wanted:
        try:
            started.append(_start(name, settings, put))
        except Exception as exc:  # noqa: BLE001 - auto: an absent input is a log line
            log.info("input %s not used: %s", name, exc)
    log.info("inputs: %s", ", ".join(type(s).__name__ for s in started) or "none")
    if not started:
        log.warning("no input works: nobody can use this kiosk (set [kiosk] keys)")
    return started
