"""What callers recorded: the staff inbox (notes, tags, urgent, done), its listen log, testimonies.

Only logged-in editors and admins hear messages; every listen is logged with who and when. A message
becomes a testimony lesson only once the staff member records that the speaker agreed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from audio_lessons import catalog, lessons, media, store
from audio_lessons.config import Settings
from audio_lessons.errors import PallayError
from audio_lessons.synth import Synthesizer

log = logging.getLogger(__name__)

MAX_NOTE = 2000
MAX_TAGS = 10
MAX_TAG = 30
_COLUMNS = ("id, listener, channel, device, language, path, duration_ms, created_at, heard, note, "
            "tags, urgent, done, consent, lesson_id")


class MessageError(PallayError):
    """A message that cannot be found or changed so; the text is Spanish."""


@dataclass(frozen=True)
class Message:
    id: str
    listener: str  # a pseudonym, shortened for display by ``caller``
    channel: str
    device: str
    language: str
    path: str  # file name inside DATA/messages
    duration_ms: int
    created_at: str
    heard: int  # how many times staff listened
    note: str
    tags: tuple[str, ...]
    urgent: bool
    done: bool
    consent: bool
    lesson_id: int | None  # the testimony lesson made from it

    @property
    def caller(self) -> str:
        """How the panel names the caller: a short pseudonym, never a number."""
        return f"oyente {self.listener[:8]}" if self.listener else "oyente anónima"


def _message(row) -> Message:
    (mid, listener, channel, device, language, path, duration, created, heard, note, tags, urgent,
     done, consent, lesson_id) = row
    return Message(mid, listener or "", channel or "", device or "", language or "", path,
                   int(duration or 0), created, int(heard or 0), note or "",
                   tuple(json.loads(tags or "[]")), bool(urgent), bool(done), bool(consent),
                   lesson_id)


def inbox(db: sqlite_utils.Database, *, show_done: bool = False, tag: str | None = None,
          limit: int = 200) -> list[Message]:
    """Messages, urgent first then newest; done ones only if asked."""
    where, args = ["1"], []
    if not show_done:
        where.append("done = 0")
    if tag:
        where.append("EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?)")
        args.append(tag)
    rows = db.execute(f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(where)} "
                      f"ORDER BY urgent DESC, created_at DESC LIMIT ?", [*args, int(limit)])
    return [_message(row) for row in rows]


def get(db: sqlite_utils.Database, message_id: str) -> Message:
    row = db.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", [message_id]).fetchone()
    if not row:
        raise MessageError("Ese mensaje no existe.")
    return _message(row)


def audio_path(settings: Settings, message: Message) -> Path:
    """The message's file, always inside the messages folder whatever the stored name says."""
    path = (settings.messages_dir / Path(message.path).name).resolve()
    if path.parent != settings.messages_dir.resolve() or not path.is_file():
        raise MessageError("El audio de este mensaje ya no está.")
    return path


def log_listen(db: sqlite_utils.Database, message_id: str, user: str) -> None:
    """Record that ``user`` listened to a message (and count it as heard)."""
    with store.write(db):
        db.execute("INSERT INTO message_listens (message_id, user, at) VALUES (?, ?, ?)",
                   [message_id, user, store.now()])
        db.execute("UPDATE messages SET heard = heard + 1 WHERE id = ?", [message_id])
    log.info("message %s heard by %s", message_id, user)


def listens(db: sqlite_utils.Database, message_id: str) -> list[tuple[str, str]]:
    """(user, when) of every listen of a message, newest first."""
    return [tuple(row) for row in db.execute(
        "SELECT user, at FROM message_listens WHERE message_id = ? ORDER BY at DESC, rowid DESC",
        [message_id])]


def normalise_tags(raw: str | list[str]) -> tuple[str, ...]:
    """Comma-separated tags, lowercased and de-duplicated; MessageError when too many or too long."""
    items = raw.split(",") if isinstance(raw, str) else raw
    tags = tuple(dict.fromkeys(" ".join(t.lower().split()) for t in items if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in tags):
        raise MessageError(f"Use a lo más {MAX_TAGS} etiquetas de {MAX_TAG} letras cada una.")
    return tags


def update(db: sqlite_utils.Database, message_id: str, *, note: str | None = None,
           tags: str | list[str] | None = None, urgent: bool | None = None,
           done: bool | None = None, consent: bool | None = None) -> Message:
    """Change what staff know about a message; fields left None stay as they are."""
    current = get(db, message_id)
    if note is not None and len(note) > MAX_NOTE:
        raise MessageError(f"La nota es demasiado larga (máximo {MAX_NOTE} caracteres).")
    new_tags = current.tags if tags is None else normalise_tags(tags)
    pick = (lambda value, old: old if value is None else value)
    with store.write(db):
        db.execute("UPDATE messages SET note = ?, tags = ?, urgent = ?, done = ?, consent = ? "
                   "WHERE id = ?", [pick(note, current.note).strip(),
                                    json.dumps(new_tags, ensure_ascii=False),
                                    int(pick(urgent, current.urgent)), int(pick(done, current.done)),
                                    int(pick(consent, current.consent)), message_id])
    return get(db, message_id)


def all_tags(db: sqlite_utils.Database) -> list[str]:
    return [row[0] for row in db.execute(
        "SELECT DISTINCT value FROM messages, json_each(messages.tags) ORDER BY value")]


def publish(db: sqlite_utils.Database, settings: Settings, synthesizer: Synthesizer,
            message_id: str, *, title: str, menu: str, speaker: str, user: str) -> int:
    """Make a message a testimony lesson in ``menu`` (needs the speaker's consent); its lesson id."""
    message = get(db, message_id)
    if not message.consent:
        raise MessageError("Antes de publicar, marque que la persona que habla dio su permiso.")
    if message.lesson_id is not None:
        raise MessageError("Este mensaje ya está publicado como lección.")
    source = audio_path(settings, message)
    prepared = media.prepare(source, settings.media_dir, settings.media, source.name)
    lesson_id = lessons.create(db, settings, synthesizer, title=title, topic="Testimonio",
                               menu=menu)
    try:
        media.register(db, prepared, source.name)
        catalog.set_recording(db, lesson_id, message.language or "es", prepared.hash,
                              speaker=speaker or message.caller)
        with store.write(db):
            db.execute("UPDATE recordings SET consent_at = ?, added_by = ? WHERE lesson_id = ?",
                       [store.now(), user, lesson_id])
            db.execute("UPDATE messages SET lesson_id = ?, done = 1 WHERE id = ?",
                       [lesson_id, message_id])
        catalog.update_lesson(db, lesson_id, published=True)
    except PallayError:
        lessons.remove(db, lesson_id)
        raise
    log.info("message %s published as lesson %d by %s", message_id, lesson_id, user)
    return lesson_id

