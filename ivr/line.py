"""The lesson line: one FastAGI call on the shared session driver.

A thin adapter: ``AgiMedia`` turns the driver's media requests into AGI commands.
Playback positions: STREAM FILE offsets and ``endpos`` count samples of the 8 kHz phone variant.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from functools import partial
from pathlib import Path

from audio_lessons import actions as a
from audio_lessons import catalog, listeners, media
from audio_lessons.config import Settings
from audio_lessons.driver import HungUp, Session, Utterance, run_async
from audio_lessons.errors import ConfigError
from audio_lessons.menu import MenuEngine
from audio_lessons.session import SessionLog, caller_for
from audio_lessons.speech.audio import read_wav
from audio_lessons.speech.pool import RecognizerPool
from ivr import alerts, outbound
from ivr.agi import AgiChannel, Hangup
from ivr.answer import Answer
from ivr.audiosocket import AudioSockets, StreamUnavailable, forwards_keys

log = logging.getLogger(__name__)
SAMPLES_PER_MS = 8  # the phone variant is 8 kHz
VOICE_SILENCE_S = 1  # RECORD FILE's end of speech (whole seconds only): capture = "record"
MESSAGE_SILENCE_S = 5
BEEP = "beep"  # Asterisk's own listen tone, the one RECORD FILE's BEEP plays
CAPTURES = ("stream", "record")

class AgiMedia:
    """The driver's media interface over one AGI channel (see ``audio_lessons.driver.Media``).

    ``sockets``: the line's AudioSocket server, to stream spoken answers; None records them.
    """

    def __init__(self, channel: AgiChannel, settings: Settings,
                 sockets: AudioSockets | None = None):
        self.channel, self.settings, self.sockets = channel, settings, sockets

    async def play(self, hashes, keys: str) -> str | None:
        for hash_ in hashes:
            digit, _ = await self._stream(self._path(hash_), keys)
            if digit:
                return digit
        return None

    async def play_lesson(self, hash_: str, offset_ms: int, keys: str) -> tuple[str | None, int]:
        digit, endpos = await self._stream(self._path(hash_), keys, offset_ms * SAMPLES_PER_MS)
        return digit, endpos // SAMPLES_PER_MS

    async def play_file(self, path: str) -> None:
        await self._stream(str(Path(path).with_suffix("")), "")

    async def wait_key(self, keys: str, timeout_s: float) -> str | None:
        try:
            return await self.channel.wait_for_digit(int(timeout_s * 1000))
        except Hangup:
            raise HungUp() from None

    async def record(self, max_seconds: int, stop_keys: str) -> a.Recorded:
        path = self._scratch("message")
        result = await self.channel.record_file(str(path), "wav", stop_keys, max_seconds * 1000,
                                                beep=True, silence_s=MESSAGE_SILENCE_S)
        return a.Recorded(str(_wav(path)), result.endpos // SAMPLES_PER_MS,
                          hung_up=result.reason == "hangup")

    async def capture(self, keys: str, max_ms: int) -> str | Utterance | None:
        """The tone, then her answer: streamed when the line has AudioSocket, else recorded."""
        if self.sockets is None:
            return await self._record_answer(keys, max_ms, beep=True)
        digit, _ = await self._stream(BEEP, keys)
        if digit:
            return digit
        answer = await asyncio.to_thread(Answer)  # the first one imports pocketsphinx
        try:
            digit = await self.sockets.capture(self.channel, keys, max_ms, answer)
        except StreamUnavailable as exc:
            log.warning("call %s: %s; recording her answer instead", self.channel.unique_id, exc)
            return await self._record_answer(keys, max_ms, beep=False)
        except Hangup:
            raise HungUp() from None
        return digit or answer.utterance()

    async def _record_answer(self, keys: str, max_ms: int, beep: bool) -> str | Utterance | None:
        path = self._scratch("voice")
        try:
            result = await self.channel.record_file(str(path), "wav", keys, max_ms, beep=beep,
                                                    silence_s=VOICE_SILENCE_S)
            if result.digit:
                return result.digit
            if result.reason == "hangup":
                raise HungUp()
            samples, rate = await asyncio.to_thread(read_wav, _wav(path))
            return Utterance(samples, rate)
        finally:
            _wav(path).unlink(missing_ok=True)

    async def hang_up(self) -> None:
        await self.channel.hangup()

    async def _stream(self, path: str, keys: str, offset: int = 0) -> tuple[str | None, int]:
        try:
            return await self.channel.stream_file(path, keys, offset)
        except Hangup as exc:
            position = None if exc.endpos is None else exc.endpos // SAMPLES_PER_MS
            raise HungUp(position) from None

    def _path(self, hash_: str) -> str:
        """Asterisk takes the path without extension and finds ``.wav`` itself."""
        return str(media.variant_path(self.settings.media_dir, hash_, "phone").with_suffix(""))

    def _scratch(self, kind: str) -> Path:
        """Where Asterisk records (no extension): the spool folder, named after the call."""
        folder = self.settings.data_dir / "spool"
        folder.mkdir(parents=True, exist_ok=True)
        call_id = self.channel.unique_id.replace(".", "-")
        return folder / f"{kind}-{call_id}-{uuid.uuid4().hex[:8]}"


class LessonLine:
    """The FastAGI handler for the ``lessons`` script; one instance serves every call."""

    def __init__(self, settings: Settings, secret: bytes, recognizers: RecognizerPool | None = None,
                 device: str = "line-1", observer=None, live=None):
        self.settings, self.secret, self.recognizers, self.device = (
            settings, secret, recognizers, device)
        # observer(channel, action_or_event): sees each step of each call (tests, debugging)
        self.observer = observer or (lambda channel, item: None)
        self.live = live  # ivr.live.LiveCalls, to show who is on the line (by pseudonym)
        self.sockets = _sockets(settings) if recognizers is not None else None
        self._starting: asyncio.Lock | None = None
        self._warned = False

    async def start(self) -> None:
        """Open the AudioSocket server now (else at the first spoken answer): a fixed port that
        is taken fails here, at start-up."""
        if self.sockets is not None and not self.sockets.listening:
            await self.sockets.start()

    async def close(self) -> None:
        if self.sockets is not None:
            await self.sockets.close()

    async def __call__(self, channel: AgiChannel) -> None:
        try:
            session = await asyncio.to_thread(self._open_call, channel)
        except Exception:
            log.exception("call %s could not start; hanging up", channel.unique_id)
            await channel.hangup()
            return
        try:
            await channel.answer()
        except Hangup:
            pass  # she is gone: the session records the hang-up at its first prompt
        try:
            await run_async(session, AgiMedia(channel, self.settings, await self._streaming(channel)))
        finally:
            session.log.db.close()

    async def _streaming(self, channel: AgiChannel) -> AudioSockets | None:
        """The AudioSocket server for this call's answers, or None: they are recorded."""
        if self.sockets is None:
            return None
        version = channel.env.get("agi_version", "")
        if not forwards_keys(version):
            if not self._warned:
                self._warned = True
                log.warning("Asterisk %s does not send keys over AudioSocket: spoken answers are "
                            "recorded (RECORD FILE), which ends a second after she stops",
                            version or "(version unknown)")
            return None
        self._starting = self._starting or asyncio.Lock()
        async with self._starting:
            if not self.sockets.listening:
                try:
                    await self.sockets.start()
                except OSError as exc:
                    log.warning("AudioSocket cannot listen on %s:%s (%s): recording answers",
                                self.sockets.host, self.sockets.requested_port, exc)
                    self.sockets = None
                    return None
        return self.sockets

    def _open_call(self, channel: AgiChannel) -> Session:
        """Who is calling: her number's pseudonym, or the one pallay passed to a callback/alert.

        AGI arguments from the pallay-outbound context: (listener pseudonym, lesson id or "",
        queue row id); the row is marked answered here, where she is surely on the phone.
        Each call has its own store connection: calls never share one.
        """
        db = outbound.connect(self.settings.db_path)
        args = channel.args + ["", "", ""]
        digits = "".join(ch for ch in channel.caller_id if ch.isdigit())
        number = digits if len(digits) >= 6 else None
        listener = listeners.pseudonym(self.secret, number) if number else None
        if args[0]:
            listener, number = args[0], None  # pallay's own number shows as the caller id
            if args[2].isdigit() and not outbound.mark_answered(db, int(args[2]), listener,
                                                                 outbound.utc_now()):
                log.info("call %s: outbound row %s was already closed", channel.unique_id, args[2])
        if listener and self.live is not None:
            self.live.identify(channel.unique_id, listener)
        caller = caller_for(db, listener, voice=self.recognizers is not None)
        offer = bool(number) and not listeners.alerts_on(db, listener)
        caller = replace(caller, offer_alerts=offer,
                         start_lesson=int(args[1]) if args[1].isdigit() else None)
        session_log = SessionLog(db, self.settings.messages_dir, channel="phone",
                                 device=self.device, listener=listener,
                                 on_alerts=partial(alerts.subscribe, db, listener, number))
        return Session(MenuEngine(catalog.view(db), self.settings), caller, session_log,
                       recognizer=self.recognizers,
                       observer=lambda item: self.observer(channel, item))


def _sockets(settings: Settings) -> AudioSockets | None:
    """The line's AudioSocket server, not yet listening; None when answers are recorded."""
    capture = settings.ivr.capture
    if capture not in CAPTURES:
        raise ConfigError(f"El ajuste ivr.capture debe ser {' o '.join(CAPTURES)}, no {capture!r}.")
    if capture == "record":
        return None
    host, _, port = settings.ivr.audiosocket_listen.rpartition(":")
    if not host or not port.isdigit() or host in ("0.0.0.0", "::"):
        raise ConfigError("El ajuste ivr.audiosocket_listen debe ser una dirección que Asterisk "
                          f"alcance, como 127.0.0.1:0, no {settings.ivr.audiosocket_listen!r}.")
    return AudioSockets(host, int(port))


def _wav(path: Path) -> Path:
    """The file RECORD FILE wrote for ``path`` with format "wav" (``with_suffix`` would eat ids
    containing dots)."""
    return path.with_name(path.name + ".wav")
