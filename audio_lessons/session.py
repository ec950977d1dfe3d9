"""One call or kiosk session: what the menu engine asks to be remembered goes to the store here.

Every front end runs on ``audio_lessons.driver``, which hands the engine's bookkeeping actions to
``SessionLog.apply``, so statistics, progress and messages are written one way.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from audio_lessons import events, listeners, store
from audio_lessons.actions import (
    Action,
    ClearProgress,
    DiscardMessage,
    LogListen,
    LogNav,
    SaveMessage,
    SaveProgress,
    SetAlerts,
    SetLanguage,
)
from audio_lessons.menu import Caller

log = logging.getLogger(__name__)


def caller_for(db: sqlite_utils.Database, listener: str | None, voice: bool = False) -> Caller:
    """What the engine needs to know about a listener at the start (nothing, if anonymous).

    A listener the store knows nothing about is treated as calling for the first time; a kiosk,
    where a group walks up to a box that has been playing all day, says otherwise.
    """
    if listener is None:
        return Caller(voice=voice, first_time=True)
    completed = {row["lesson_id"] for row in db.query(
        "SELECT DISTINCT lesson_id FROM listen_events WHERE listener = ? AND completed = 1",
        [listener])}
    language = listeners.language_of(db, listener)
    progress = listeners.progress(db, listener)
    return Caller(language=language, progress=progress, completed=frozenset(completed),
                  voice=voice, first_time=not (language or progress or completed))


class SessionLog:
    """Writes one session's events, progress, language and messages."""

    def __init__(self, db: sqlite_utils.Database, messages_dir: Path, *, channel: str,
                 device: str, listener: str | None,
                 on_alerts: Callable[[bool], None] | None = None):
        self.db, self.messages_dir = db, messages_dir
        self.on_alerts = on_alerts  # the phone line keeps her number for new-lesson calls
        self.channel, self.device, self.listener = channel, device, listener
        self.session = events.new_id()
        self.lesson_started_at: str | None = None
        if listener is not None:
            listeners.remember(db, listener)

    def apply(self, action: Action) -> None:
        """Write one bookkeeping action; a failure is logged, never raised into the call."""
        try:
            self._apply(action)
        except Exception:  # a full disk must not drop a miner mid-lesson
            log.exception("session %s: could not store %r", self.session, action)

    def _apply(self, action: Action) -> None:
        match action:
            case LogNav(step, detail):
                if step == "lesson_start":
                    self.lesson_started_at = store.now()
                events.record_nav(self.db, events.NavEvent(
                    events.new_id(), self.session, self.channel, self.device, self.listener,
                    step, detail, store.now()))
            case LogListen():
                self._log_listen(action)
            case SaveProgress(lesson_id, language, position) if self.listener:
                listeners.save_progress(self.db, self.listener, lesson_id, language, position)
            case ClearProgress(lesson_id) if self.listener:
                listeners.clear_progress(self.db, self.listener, lesson_id)
            case SetLanguage(language) if self.listener:
                listeners.remember(self.db, self.listener, language=language)
            case SaveMessage():
                self._save_message(action)
            case DiscardMessage(path):
                Path(path).unlink(missing_ok=True)
            case SetAlerts(on) if self.on_alerts:
                self.on_alerts(on)

    def _log_listen(self, action: LogListen) -> None:
        started = self.lesson_started_at or store.now()
        events.record_listen(self.db, events.ListenEvent(
            events.new_id(), self.channel, self.device, self.listener, action.lesson_id,
            action.language, action.input_method, started, action.heard_ms / 1000,
            action.furthest_ms, action.duration_ms))

    def _save_message(self, action: SaveMessage) -> None:
        message_id = events.new_id()
        source = Path(action.path)
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        target = self.messages_dir / f"{message_id}{source.suffix.lower() or '.wav'}"
        shutil.move(source, target)
        with store.write(self.db):
            self.db["messages"].insert({
                "id": message_id, "listener": self.listener, "channel": self.channel,
                "device": self.device, "language": action.language, "path": target.name,
                "duration_ms": action.duration_ms, "created_at": store.now(), "heard": 0})
        log.info("session %s: message %s saved (%d ms)", self.session, message_id,
                 action.duration_ms)
