"""The lesson line: drives the core menu engine over one FastAGI call.

A thin adapter: each engine action becomes AGI commands, each AGI outcome becomes an engine event.
Playback positions: STREAM FILE offsets and ``endpos`` count samples of the 8 kHz phone variant.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from audio_lessons import actions as a
from audio_lessons import catalog, listeners, media
from audio_lessons.config import Settings
from audio_lessons.menu import MenuEngine
from audio_lessons.session import SessionLog, caller_for
from audio_lessons.speech.audio import read_wav
from ivr import alerts, outbound
from ivr.agi import AgiChannel, AgiError, Hangup

log = logging.getLogger(__name__)
SAMPLES_PER_MS = 8  # the phone variant is 8 kHz
VOICE_LISTEN_MS = 4_000  # how long a spoken answer may be
VOICE_SILENCE_S = 1  # end of speech


@dataclass
class Call:
    """What one call needs: its channel, engine, log, and who she is."""

    channel: AgiChannel
    engine: MenuEngine
    log: SessionLog
    listener: str | None
    number: str | None  # her raw number, only while the call lasts (to opt in to alerts)
    start_lesson: int | None = None


class RecognizerPool:
    """Recognisers decode one utterance at a time: calls borrow one, the pool grows on demand."""

    def __init__(self, factory: Callable):
        self.factory = factory
        self.idle: queue.SimpleQueue = queue.SimpleQueue()

    def recognise(self, samples, rate: int, words):
        try:
            recognizer = self.idle.get_nowait()
        except queue.Empty:
            recognizer = self.factory()
        try:
            return recognizer.recognise(samples, rate, words)
        finally:
            self.idle.put(recognizer)


class LessonLine:
    """The FastAGI handler for the ``lessons`` script; one instance serves every call."""

    def __init__(self, settings: Settings, secret: bytes, recognizers: RecognizerPool | None = None,
                 device: str = "line-1", observer=None, live=None):
        self.settings, self.secret, self.recognizers, self.device = (
            settings, secret, recognizers, device)
        # observer(channel, action_or_event): sees each step of each call (tests, debugging)
        self.observer = observer or (lambda channel, item: None)
        self.live = live  # ivr.live.LiveCalls, to show who is on the line (by pseudonym)

    async def __call__(self, channel: AgiChannel) -> None:
        call = None
        try:
            call = await asyncio.to_thread(self._open_call, channel)
            await channel.answer()
            await self._drive(call)
        except Hangup:
            log.info("call %s: hung up", channel.unique_id)
        except Exception:
            log.exception("call %s failed; playing the sorry prompt", channel.unique_id)
            await self._sorry(channel, call)
        finally:
            if call is not None:
                call.log.db.close()

    async def _sorry(self, channel: AgiChannel, call: Call | None) -> None:
        """Say sorry and hang up cleanly, whatever state the call was in."""
        try:
            sorry = call.engine.prompt("sorry", self.settings.menu.default_language) if call else None
            if sorry:
                await channel.stream_file(self._media_path(sorry.media), "")
            await channel.hangup()
        except AgiError:
            pass  # the caller is already gone

    def _open_call(self, channel: AgiChannel) -> Call:
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
        engine = MenuEngine(catalog.view(db), self.settings)
        session_log = SessionLog(db, self.settings.messages_dir, channel="phone",
                                 device=self.device, listener=listener)
        lesson = int(args[1]) if args[1].isdigit() else None
        return Call(channel, engine, session_log, listener, number, lesson)

    def _caller(self, call: Call):
        db = call.log.db
        caller = caller_for(db, call.listener, voice=self.recognizers is not None)
        offer = bool(call.number) and not listeners.alerts_on(db, call.listener)
        return replace(caller, offer_alerts=offer, start_lesson=call.start_lesson)

    async def _drive(self, call: Call) -> None:
        caller = await asyncio.to_thread(self._caller, call)
        state, pending = call.engine.start(caller)
        # Store writes go to a per-call writer, in order, so the next prompt never waits for them.
        writes: asyncio.Queue = asyncio.Queue()
        writer = asyncio.create_task(self._write(call, writes))
        try:
            while True:
                event = None
                for action in pending:
                    if isinstance(action, (*a.BOOKKEEPING, a.SetAlerts)):
                        writes.put_nowait(action)
                    elif isinstance(action, a.End):
                        await call.channel.hangup()
                        return
                    else:
                        self.observer(call.channel, action)
                        event = await self._perform(call, action)
                        if event is not None:
                            self.observer(call.channel, event)
                            break
                if event is None:
                    raise AgiError(f"engine stopped waiting in node {state.node!r}")
                state, pending = call.engine.handle(state, event)
        finally:
            writes.put_nowait(None)
            await writer  # every event of the call is stored before its connection closes

    async def _write(self, call: Call, writes: asyncio.Queue) -> None:
        while (action := await writes.get()) is not None:
            await asyncio.to_thread(self._store, call, action)

    @staticmethod
    def _store(call: Call, action: a.Action) -> None:
        if not isinstance(action, a.SetAlerts):
            call.log.apply(action)  # logs, never raises
            return
        try:
            alerts.subscribe(call.log.db, call.listener, call.number, action.on)
        except Exception:  # a failed opt-in must not end her call
            log.exception("call: could not store her answer on alerts")

    async def _perform(self, call: Call, action: a.Action) -> a.Event | None:
        """Carry out one action; a hang-up at any moment becomes a HangUp event."""
        try:
            return await self._act(call.channel, action)
        except Hangup as exc:
            position = None
            if isinstance(action, a.PlayLesson) and exc.endpos is not None:
                position = exc.endpos // SAMPLES_PER_MS
            return a.HangUp(position_ms=position)

    async def _act(self, channel: AgiChannel, action: a.Action) -> a.Event | None:
        match action:
            case a.Say(prompts):
                await self._play_prompts(channel, prompts, "")
                return None
            case a.Ask(prompts, keys, words, timeout_s):
                digit = await self._play_prompts(channel, prompts, keys)
                if digit:
                    return a.Key(digit)
                return await self._listen(channel, keys, words, timeout_s)
            case a.PlayLesson(_, _, hash_, offset_ms, keys):
                path = self._media_path(hash_)
                digit, endpos = await channel.stream_file(path, keys, offset_ms * SAMPLES_PER_MS)
                position = endpos // SAMPLES_PER_MS
                return a.Key(digit, position_ms=position) if digit else a.PlaybackEnded(position)
            case a.Pause(prompts, keys, timeout_s):
                digit = await self._play_prompts(channel, prompts, keys)
                digit = digit or await channel.wait_for_digit(int(timeout_s * 1000))
                return a.Key(digit) if digit else a.Silence()
            case a.Record(max_seconds, stop_keys):
                return await self._record(channel, max_seconds, stop_keys)
            case a.PlayMessage(path):
                await channel.stream_file(str(Path(path).with_suffix("")), "")
                return None
        raise AgiError(f"the phone line cannot perform {action!r}")

    def _media_path(self, hash_: str) -> str:
        """Asterisk takes the path without extension and finds ``.wav`` itself."""
        return str(media.variant_path(self.settings.media_dir, hash_, "phone").with_suffix(""))

    async def _play_prompts(self, channel: AgiChannel, prompts, keys: str) -> str | None:
        for prompt in prompts:
            digit, _ = await channel.stream_file(self._media_path(prompt.media), keys)
            if digit:
                return digit
        return None

    async def _listen(self, channel: AgiChannel, keys: str, words, timeout_s: float) -> a.Event:
        if not (self.recognizers and words):
            digit = await channel.wait_for_digit(int(timeout_s * 1000))
            return a.Key(digit) if digit else a.Silence()
        path = self._scratch_path("voice", channel)
        try:
            result = await channel.record_file(str(path), "wav", keys, VOICE_LISTEN_MS, beep=True,
                                               silence_s=VOICE_SILENCE_S)
            if result.digit:
                return a.Key(result.digit)
            if result.reason == "hangup":
                raise Hangup("hung up while speaking")
            return await asyncio.to_thread(self._recognize, _wav(path), words)
        finally:
            _wav(path).unlink(missing_ok=True)

    def _recognize(self, wav: Path, words) -> a.Event:
        samples, rate = read_wav(wav)
        if len(samples) < rate // 10:
            return a.Silence()  # she said nothing: RECORD FILE got (almost) no audio
        heard = self.recognizers.recognise(samples, rate, list(words))
        if heard.reason == "silence":
            return a.Silence()
        return a.Word(heard.text, heard.confidence, heard.accepted)

    async def _record(self, channel: AgiChannel, max_seconds: int, stop_keys: str) -> a.Event:
        path = self._scratch_path("message", channel)
        result = await channel.record_file(str(path), "wav", stop_keys, max_seconds * 1000,
                                           beep=True, silence_s=5)
        return a.Recorded(str(_wav(path)), result.endpos // SAMPLES_PER_MS,
                          hung_up=result.reason == "hangup")

    def _scratch_path(self, kind: str, channel: AgiChannel) -> Path:
        """Where Asterisk records (no extension): the spool folder, named after the call."""
        folder = self.settings.data_dir / "spool"
        folder.mkdir(parents=True, exist_ok=True)
        call_id = channel.unique_id.replace(".", "-")
        return folder / f"{kind}-{call_id}-{uuid.uuid4().hex[:8]}"


def _wav(path: Path) -> Path:
    """The file RECORD FILE wrote for ``path`` with format "wav" (``with_suffix`` would eat ids
    containing dots)."""
    return path.with_name(path.name + ".wav")
