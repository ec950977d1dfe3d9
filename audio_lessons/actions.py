"""What flows in and out of the menu engine: events from a front end, actions for it.

A front end (phone line, kiosk) performs each action in order. Actions that wait for the listener
(``Ask``, ``PlayLesson``, ``Pause``, ``Record``) produce the next event; ``Say`` and ``PlayMessage`` just play;
the ``Log*``/``Save*`` actions are bookkeeping that ``audio_lessons.session`` writes to the store.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A key pressed (phone DTMF, kiosk button); ``position_ms`` when it interrupted a lesson."""

    digit: str
    position_ms: int | None = None
    via: str = "key"  # "key" on the phone, "button" on the kiosk


@dataclass(frozen=True)
class Word:
    """A recognised word; ``text`` None or ``accepted`` False means "heard something, not sure what"."""

    text: str | None
    confidence: float = 1.0
    accepted: bool = True
    position_ms: int | None = None


@dataclass(frozen=True)
class Silence:
    """Nothing pressed or said before the timeout."""


@dataclass(frozen=True)
class PlaybackEnded:
    """A lesson played to its end."""

    position_ms: int


@dataclass(frozen=True)
class Recorded:
    """A message recording finished (stop key, silence, time limit, or hang-up)."""

    path: str
    duration_ms: int
    hung_up: bool = False


@dataclass(frozen=True)
class HangUp:
    """The caller hung up (or the kiosk session was ended); ``position_ms`` if a lesson was playing."""

    position_ms: int | None = None


Event = Key | Word | Silence | PlaybackEnded | Recorded | HangUp

# ---- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """A prompt resolved to the language it exists in (``media`` is its content hash)."""

    name: str
    language: str
    media: str


@dataclass(frozen=True)
class Say:
    """Play prompts; a key in ``keys`` stops them and is handled as the next event."""

    prompts: tuple[Prompt, ...]
    keys: str = ""


@dataclass(frozen=True)
class Ask:
    """Play prompts (a key in ``keys`` interrupts them), then wait for a key or a word."""

    prompts: tuple[Prompt, ...]
    keys: str
    words: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class PlayLesson:
    lesson_id: int
    language: str
    media: str
    offset_ms: int
    keys: str


@dataclass(frozen=True)
class Pause:
    """Stay silent until one of ``keys`` (or the timeout: then a Silence event)."""

    prompts: tuple[Prompt, ...]
    keys: str
    timeout_s: float


@dataclass(frozen=True)
class Record:
    max_seconds: int
    stop_keys: str


@dataclass(frozen=True)
class PlayMessage:
    path: str


@dataclass(frozen=True)
class End:
    """Hang up (phone) or go back to idle (kiosk)."""


@dataclass(frozen=True)
class LogNav:
    step: str  # one of audio_lessons.events.NAV_STEPS
    detail: str = ""


@dataclass(frozen=True)
class LogListen:
    lesson_id: int
    language: str
    input_method: str
    furthest_ms: int
    duration_ms: int
    heard_ms: int


@dataclass(frozen=True)
class SaveProgress:
    lesson_id: int
    language: str
    position_ms: int


@dataclass(frozen=True)
class ClearProgress:
    lesson_id: int


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class SetAlerts:
    """She agreed to be called when there is a new lesson (the phone line keeps her number)."""

    on: bool


@dataclass(frozen=True)
class SaveMessage:
    path: str
    duration_ms: int
    language: str


@dataclass(frozen=True)
class DiscardMessage:
    path: str


Action = (Say | Ask | PlayLesson | Pause | Record | PlayMessage | End | LogNav | LogListen
          | SaveProgress | ClearProgress | SetLanguage | SetAlerts | SaveMessage | DiscardMessage)
WAITING = (Ask, PlayLesson, Pause, Record)
BOOKKEEPING = (LogNav, LogListen, SaveProgress, ClearProgress, SetLanguage, SetAlerts, SaveMessage,
               DiscardMessage)
