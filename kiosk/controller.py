"""The controller: one thread owns the kiosk, idle (with invitations) or running a session.

Idle, any button starts a session (the press only wakes the kiosk: a group walking up presses
anything). A session is the shared driver (``audio_lessons.driver.run``) on ``KioskMedia`` with
``via="button"`` and channel "kiosk", anonymous: a kiosk is not a first phone call, so nobody is
played the first lesson at once, and each lesson heard to the end asks how many people listened.
It ends when the engine says goodbye or someone presses ``*``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import sqlite_utils

from audio_lessons import catalog, driver
from audio_lessons.config import Settings
from audio_lessons.driver import HungUp, Session
from audio_lessons.menu import MenuEngine
from audio_lessons.session import SessionLog, caller_for
from kiosk.attract import Attract
from kiosk.inbox import KEYS, TALK, VOLUME_DOWN, VOLUME_UP, Inbox, Played, Press, Stop
from kiosk.media import KioskMedia
from kiosk.watchdog import Notifier

log = logging.getLogger(__name__)
WAKE_KEYS = (*KEYS, TALK)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Kiosk:
    """The state a kiosk's controller owns; ``run`` until a ``Stop`` arrives."""

    settings: Settings
    db: sqlite_utils.Database
    inbox: Inbox
    media: KioskMedia
    recognizer: object | None = None  # anything with recognise(samples, rate, words)
    notifier: Notifier = field(default_factory=Notifier)
    clock: Callable[[], dt.datetime] = utc_now
    observer: Callable[[object], None] | None = None  # sees every action and event (tests)
    sessions: int = 0
    in_session: bool = False

    def stop(self) -> None:
        """From any thread (a signal handler): end the session in progress, then ``run``."""
        self.inbox.put(Stop())

    def run(self) -> None:
        attract = Attract.from_settings(self.settings.kiosk)
        self.notifier.ready()
        self.notifier.status("idle")
        log.info("kiosk %s ready", self.settings.kiosk.device)
        invite_at = time.monotonic() + attract.every_s
        while not self.media.stopped:
            wait = max(0.0, invite_at - time.monotonic()) if attract.every_s > 0 else None
            item = self.inbox.get(wait)
            if isinstance(item, Stop):
                break
            if item is None:
                woken = self._invite(attract)
                invite_at = time.monotonic() + attract.every_s
            elif isinstance(item, Played):
                self.media.player.close()  # the volume beep ended
                woken = False
            elif isinstance(item, Press) and item.key in (VOLUME_UP, VOLUME_DOWN):
                self.media.key(item)  # louder or softer, with a beep to hear it
                woken = False
            else:
                woken = isinstance(item, Press) and item.key in WAKE_KEYS
            if woken:
                self._session()
                invite_at = time.monotonic() + attract.every_s
        self.media.hang_up()
        self.notifier.stopping()
        log.info("kiosk %s stopped", self.settings.kiosk.device)

    def _invite(self, attract: Attract) -> bool:
        """Play the invitation (unless it is quiet hours); True if a key pressed during it."""
        if not attract.allowed(self.clock()):
            return False
        prompt = MenuEngine(catalog.view(self.db), self.settings).prompt(
            "attract", self.settings.menu.default_language)
        if prompt is None:
            log.debug("no attract prompt in the catalogue (pallay init adds it)")
            return False
        log.info("inviting passers-by")
        try:
            return self.media.play([prompt.media], "".join(WAKE_KEYS)) is not None
        except HungUp:
            return False  # "*" during the invitation: it stops, nothing starts
        except Exception:
            log.exception("the invitation could not play")
            return False
        finally:
            self.media.player.close()

    def _session(self) -> None:
        """One session on the shared driver."""
        self.sessions += 1
        self.in_session = True
        self.notifier.status("session")
        log.info("session %d starts", self.sessions)
        try:
            driver.run(self._open_session(), self.media)
        except Exception:  # the store or catalogue unreadable: stay alive, try next time
            log.exception("session %d could not start", self.sessions)
        self.in_session = False
        log.info("session %d ended", self.sessions)
        self.notifier.status("idle")

    def _open_session(self) -> Session:
        """A fresh catalogue view each time, so content swapped by a sync is used at once."""
        engine = MenuEngine(catalog.view(self.db), self.settings)
        caller = replace(caller_for(self.db, None, voice=self.recognizer is not None),
                         first_time=False, ask_group=self.settings.kiosk.ask_group)
        session_log = SessionLog(self.db, self.settings.messages_dir, channel="kiosk",
                                 device=self.settings.kiosk.device, listener=None)
        return Session(engine, caller, session_log, recognizer=self.recognizer,
                       observer=self.observer, via="button")
