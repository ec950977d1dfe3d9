"""The session driver: one loop between the menu engine and every front end.

The phone line, the kiosk and the admin panel's phone simulator differ only in how they play and
listen, so each implements the small :class:`Media` interface and nothing else. What a session
means lives here, once: the order of store writes, what ``Ask`` and ``Pause`` do, when to listen for
a word, what a hang-up reports, the "sorry" path.

:class:`Session` is sans-IO: ``start()`` and ``send(outcome)`` return the next :class:`Request`
(a ``Media`` method and its arguments) and never block on a front end. Threads and blocking
devices (kiosk) use :func:`run`, asyncio (phone line) :func:`run_async`, and a front end that
answers over HTTP (simulator) keeps the ``Session`` between requests and calls ``send`` itself.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from audio_lessons import actions as a
from audio_lessons.menu import Caller, MenuEngine
from audio_lessons.session import SessionLog
from audio_lessons.threads import in_thread

log = logging.getLogger(__name__)
CAPTURE_MS = 4_000  # how long a spoken answer may be
MIN_UTTERANCE_S = 0.1  # less audio than this is silence (the line carried nothing)


class HungUp(Exception):
    """Raised by a front end when the listener leaves (hang-up, kiosk session ended).

    ``position_ms``: where the lesson stopped, when a lesson was playing.
    """

    def __init__(self, position_ms: int | None = None):
        super().__init__("the listener left")
        self.position_ms = position_ms


@dataclass(frozen=True)
class Utterance:
    """What the microphone or the line captured after the listen tone."""

    samples: np.ndarray
    rate: int


class Media(Protocol):
    """What a front end implements (blocking; the phone line has the same methods, async).

    Media are content hashes: each front end plays its own variant (8 kHz phone, 22 kHz kiosk).
    Any method may raise :class:`HungUp`.
    """

    def play(self, media: Sequence[str], keys: str) -> str | None:
        """Play prompts in order; a key in ``keys`` stops them and is returned."""

    def play_lesson(self, media: str, offset_ms: int, keys: str) -> tuple[str | None, int]:
        """Play from ``offset_ms``; return (the key that stopped it or None, position in ms)."""

    def play_file(self, path: str) -> None:
        """Play a recorded message (a WAV file) to the end."""

    def wait_key(self, keys: str, timeout_s: float) -> str | None:
        """Wait for one key in ``keys``; None after ``timeout_s``."""

    def record(self, max_seconds: int, stop_keys: str) -> a.Recorded:
        """Record a message after a tone, until a stop key, silence, the limit or a hang-up."""

    def capture(self, keys: str, max_ms: int) -> str | Utterance | None:
        """After a tone, capture one utterance: a key in ``keys`` returns the key instead."""

    def hang_up(self) -> None:
        """End the session (phone: hang up; kiosk: back to idle)."""


@dataclass(frozen=True)
class Request:
    """One call the session asks of its front end: ``getattr(media, method)(*args)``."""

    method: str
    args: tuple[Any, ...] = ()


class Writer:
    """Applies one session's bookkeeping to the store in order, on its own thread.

    The next prompt never waits for SQLite (a write can wait seconds for the lock when many
    calls end at once); ``close()`` returns once everything is written.
    """

    def __init__(self, session_log: SessionLog):
        self.log = session_log
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._drain, name="session-writer", daemon=True)
        self.thread.start()

    def put(self, action: a.Action) -> None:
        self.queue.put(action)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def _drain(self) -> None:
        while (action := self.queue.get()) is not None:
            self.log.apply(action)  # logs, never raises


class Session:
    """One call or kiosk session, driven one request at a time."""

    def __init__(self, engine: MenuEngine, caller: Caller, session_log: SessionLog,
                 recognizer=None, observer: Callable[[object], None] | None = None,
                 capture_ms: int = CAPTURE_MS, via: str = "key"):
        self.engine, self.caller, self.log = engine, caller, session_log
        self.via = via  # how keys arrive, for the statistics: "key" (phone), "button" (kiosk)
        self.recognizer = recognizer  # anything with recognise(samples, rate, words)
        self.observer = observer or (lambda item: None)
        self.capture_ms = capture_ms
        self.language = caller.language or engine.menu_settings.default_language
        self.writer = Writer(session_log)
        self._steps = self._run()
        self.done = False

    def start(self) -> Request | None:
        """The first request (None if the session ended at once)."""
        return self._advance(None)

    def send(self, outcome: object) -> Request | None:
        """The front end's answer to the last request (or a :class:`HungUp`); the next request."""
        return self._advance(outcome)

    def sorry(self) -> list[Request]:
        """What to do after an unexpected failure: say sorry (if the prompt exists), end."""
        self._steps.close()
        self.done = True
        prompt = self.engine.prompt("sorry", self.language)
        say = [Request("play", ((prompt.media,), ""))] if prompt else []
        return [*say, Request("hang_up")]

    def close(self) -> None:
        """Wait until every event of the session is stored."""
        self.writer.close()

    def _advance(self, outcome: object) -> Request | None:
        try:
            return self._steps.send(outcome)  # a new generator takes None: start()
        except StopIteration:
            self.done = True
            return None

    # ---- the loop -------------------------------------------------------------------------------

    def _run(self) -> Generator[Request, object, None]:
        state, actions = self.engine.start(self.caller)
        while True:
            event = None
            for action in actions:
                if isinstance(action, a.BOOKKEEPING):
                    self.writer.put(action)  # still written after an interrupted prompt
                elif event is not None:
                    continue  # a key interrupted the step: its remaining media are skipped
                elif isinstance(action, a.End):
                    yield Request("hang_up")
                    return
                else:
                    self.observer(action)
                    event = yield from self._perform(action)
                    if event is not None:
                        self.observer(event)
            if event is None:
                raise RuntimeError(f"the engine stopped waiting in node {state.node!r}")
            self.language = state.language
            state, actions = self.engine.handle(state, event)

    def _perform(self, action: a.Action) -> Generator[Request, object, a.Event | None]:
        """Carry out one action; return the event it produced, if any (a hang-up at any point)."""
        try:
            return (yield from self._act(action))
        except HungUp as gone:
            position = gone.position_ms if isinstance(action, a.PlayLesson) else None
            return a.HangUp(position_ms=position)

    def _act(self, action: a.Action) -> Generator[Request, object, a.Event | None]:
        match action:
            case a.Say(prompts, keys):
                digit = yield from self._ask("play", _media(prompts), keys)
                return self._key(digit) if digit else None
            case a.Ask(prompts, keys, words, timeout_s):
                digit = yield from self._ask("play", _media(prompts), keys)
                return self._key(digit) if digit else (yield from self._listen(keys, words, timeout_s))
            case a.PlayLesson(_, _, media, offset_ms, keys):
                digit, position = yield from self._ask("play_lesson", media, offset_ms, keys)
                return self._key(digit, position) if digit else a.PlaybackEnded(position)
            case a.Pause(prompts, keys, timeout_s):
                digit = yield from self._ask("play", _media(prompts), keys)
                digit = digit or (yield from self._ask("wait_key", keys, timeout_s))
                return self._key(digit) if digit else a.Silence()
            case a.Record(max_seconds, stop_keys):
                return (yield from self._ask("record", max_seconds, stop_keys))
            case a.PlayMessage(path):
                yield from self._ask("play_file", path)
                return None
        raise RuntimeError(f"no front end performs {action!r}")

    def _key(self, digit: str, position_ms: int | None = None) -> a.Key:
        return a.Key(digit, position_ms=position_ms, via=self.via)

    @staticmethod
    def _ask(method: str, *args: Any) -> Generator[Request, object, Any]:
        outcome = yield Request(method, args)
        if isinstance(outcome, HungUp):
            raise outcome
        return outcome

    def _listen(self, keys: str, words, timeout_s: float) -> Generator[Request, object, a.Event]:
        """After a question: a word or a key when a recogniser listens, else a key."""
        if self.recognizer is None or not words:
            digit = yield from self._ask("wait_key", keys, timeout_s)
            return self._key(digit) if digit else a.Silence()
        heard = yield from self._ask("capture", keys, self.capture_ms)
        if isinstance(heard, str):
            return self._key(heard)
        return self._recognise(heard, words)

    def _recognise(self, heard: Utterance | None, words) -> a.Event:
        if heard is None or len(heard.samples) < heard.rate * MIN_UTTERANCE_S:
            return a.Silence()
        result = self.recognizer.recognise(heard.samples, heard.rate, list(words))
        if result.reason == "silence":
            return a.Silence()
        return a.Word(result.text, result.confidence, result.accepted)


def _media(prompts) -> tuple[str, ...]:
    return tuple(p.media for p in prompts)


# ---- runners ----------------------------------------------------------------------------------


def run(session: Session, media: Media) -> None:
    """Drive ``session`` to its end on a blocking front end (kiosk, tests)."""
    try:
        request = session.start()
        while request is not None:
            try:
                outcome = getattr(media, request.method)(*request.args)
            except HungUp as gone:
                outcome = gone
            request = session.send(outcome)
    except Exception:
        log.exception("session %s failed; saying sorry", session.log.session)
        _sorry(session, media)
    finally:
        session.close()


def _sorry(session: Session, media: Media) -> None:
    for request in session.sorry():
        try:
            getattr(media, request.method)(*request.args)
        except Exception:  # the listener is already gone, or the device failed again
            log.debug("session %s: sorry not heard", session.log.session, exc_info=True)
            return


async def run_async(session: Session, media) -> None:
    """Drive ``session`` on an asyncio front end (the phone line): ``media``'s methods are async.

    Engine steps take microseconds and run on the loop; recognising an utterance takes up to a
    second, so it runs in a worker thread, as does waiting for the last store writes.
    """
    try:
        request = session.start()
        while request is not None:
            try:
                outcome = await getattr(media, request.method)(*request.args)
            except HungUp as gone:
                outcome = gone
            if isinstance(outcome, Utterance):
                request = await in_thread(session.send, outcome)
            else:
                request = session.send(outcome)
    except Exception:
        log.exception("session %s failed; saying sorry", session.log.session)
        for request in session.sorry():
            try:
                await getattr(media, request.method)(*request.args)
            except Exception:  # the caller is already gone
                log.debug("session %s: sorry not heard", session.log.session, exc_info=True)
                break
    finally:
        await in_thread(session.close)
