"""The kiosk's side of the session driver: ``audio_lessons.driver.Media`` on speaker, mic and keys.

A thin adapter, like the phone line's ``AgiMedia``: every method waits on the controller's inbox
(it runs on the controller thread) for the item that answers it. ``*`` ends the session at any
moment (``HungUp``: back to idle), the volume keys work everywhere, a stale ``Played`` or
``Sound`` from an earlier playback or opening is ignored.

Positions are frames of the 22 kHz kiosk variant; the driver speaks milliseconds.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from audio_lessons import actions as a
from audio_lessons.config import Settings
from audio_lessons.driver import HungUp, Utterance
from kiosk import clips as clip_files
from kiosk.clips import Clips
from kiosk.inbox import (
    END_KEY,
    KEYS,
    TALK,
    VOLUME_DOWN,
    VOLUME_UP,
    Inbox,
    Played,
    Press,
    Release,
    Sound,
    Stop,
)
from kiosk.microphone import FRAME_S, Loudness, MessageFile, Microphone
from kiosk.player import Player, tone
from kiosk.volume import Volume

log = logging.getLogger(__name__)
END_OF_SPEECH_S = 0.6  # a pause this long after speech ends a spoken answer
LEAD_S, TAIL_S = 0.2, 0.3  # kept around the speech in an utterance


class KioskMedia:
    """The driver's media interface on one kiosk (see ``audio_lessons.driver.Media``)."""

    def __init__(self, inbox: Inbox, player: Player, clips: Clips, volume: Volume,
                 settings: Settings, microphone: Microphone | None = None):
        self.inbox, self.player, self.clips, self.volume = inbox, player, clips, volume
        self.microphone = microphone
        self.settings = settings
        self.spool = settings.data_dir / "spool"
        self.beep = tone(clips.rate)
        self.stopped = False  # a Stop arrived: the kiosk shuts down after this session
        self.voice = False  # a recogniser listens: the talk button works
        self._talk_pending = False  # talk pressed during a question: listen as soon as it ends

    # ---- playing --------------------------------------------------------------------------------

    def play(self, hashes, keys: str) -> str | None:
        """Prompts; with voice on, the talk button cuts a question short to answer it."""
        self._talk_pending = False
        return self._play(self.clips.joined(hashes), 0, keys, talk=self._talk_button())[0]

    def _talk_button(self) -> bool:
        return self.voice and self.microphone is not None and self.settings.kiosk.talk in (
            "press", "hold")

    def play_lesson(self, hash_: str, offset_ms: int, keys: str) -> tuple[str | None, int]:
        rate = self.clips.rate
        log.info("lesson %s from %d ms", hash_[:12], offset_ms)
        digit, frame = self._play(self.clips.get(hash_), offset_ms * rate // 1000, keys)
        return digit, frame * 1000 // rate

    def play_file(self, path: str) -> None:
        samples, rate = clip_files.read_wav(Path(path))
        self._play(samples, 0, "", rate)

    def _play(self, clip: np.ndarray, start: int, keys: str, rate: int | None = None,
              talk: bool = False) -> tuple[str | None, int]:
        """Play until the end or a key in ``keys``: (that key or None, the frame reached)."""
        rate = rate or self.clips.rate
        if start >= len(clip):
            return None, len(clip)
        token = self.player.start(clip, rate, start)
        try:
            while True:
                item = self.inbox.get()
                if isinstance(item, Played) and item.token == token:
                    self.player.stop()
                    return None, len(clip)
                if talk and isinstance(item, Press) and item.key == TALK:
                    self._talk_pending = True
                    return None, self.player.stop()
                key = self.key(item)
                if key and key in keys:
                    return key, self.player.stop()
        except HungUp:
            raise HungUp(self.player.stop() * 1000 // rate) from None

    # ---- keys -----------------------------------------------------------------------------------

    def wait_key(self, keys: str, timeout_s: float) -> str | None:
        """Any key, like the phone's WAIT FOR DIGIT: the engine says when one is not valid."""
        deadline = time.monotonic() + timeout_s
        while (item := self.inbox.get(deadline - time.monotonic())) is not None:
            if key := self.key(item):
                return key
        return None

    def key(self, item) -> str | None:
        """A key for the engine, or None; the volume keys act here; ``*`` and stop end."""
        if isinstance(item, Stop) or (isinstance(item, Press) and item.key == END_KEY):
            self.stopped = self.stopped or isinstance(item, Stop)
            raise HungUp()
        if not isinstance(item, Press):
            return None
        if item.key in (VOLUME_UP, VOLUME_DOWN):
            self.volume.change(+1 if item.key == VOLUME_UP else -1)
            if not self.player.playing:  # she hears how loud it is now (nothing waits for it)
                self.player.start(self.beep, self.clips.rate)
            return None
        return item.key if item.key in KEYS else None

    # ---- listening ------------------------------------------------------------------------------

    def capture(self, keys: str, max_ms: int) -> str | Utterance | None:
        """Push-to-talk: a key answers at once; the talk button (held, or pressed and then the
        tone) captures what she says. ``open`` listens after the tone, like the phone."""
        if self.microphone is None:
            return self.wait_key(keys, self.settings.menu.listen_seconds)
        if self.settings.kiosk.talk == "open":
            return self._listen(keys, max_ms)
        if self._talk_pending:
            self._talk_pending = False
            return self._hold(keys, max_ms) if self.settings.kiosk.talk == "hold" else (
                self._listen(keys, max_ms))
        deadline = time.monotonic() + self.settings.menu.listen_seconds
        while (item := self.inbox.get(deadline - time.monotonic())) is not None:
            if isinstance(item, Press) and item.key == TALK:
                if self.settings.kiosk.talk == "hold":
                    return self._hold(keys, max_ms)
                return self._listen(keys, max_ms)
            if key := self.key(item):
                return key
        return None

    def _listen(self, keys: str, max_ms: int) -> str | Utterance | None:
        """The tone, then her words until she pauses (or ``max_ms``); None if she said nothing."""
        digit, _ = self._play(self.beep, 0, keys)
        if digit:
            return digit
        loudness, chunks, heard, quiet = Loudness(self.microphone.rate), [], False, 0.0
        token = self.microphone.open()
        deadline = time.monotonic() + max_ms / 1000
        try:
            while (item := self.inbox.get(deadline - time.monotonic())) is not None:
                if isinstance(item, Sound) and item.token == token:
                    chunks.append(item.samples)
                    for speech in loudness.frames(item.samples):
                        heard, quiet = heard or speech, 0.0 if speech else quiet + FRAME_S
                    if heard and quiet >= END_OF_SPEECH_S:
                        break
                elif (key := self.key(item)) and key in keys:
                    return key
        finally:
            self.microphone.close()
        return self._utterance(chunks) if heard else None

    def _hold(self, keys: str, max_ms: int) -> str | Utterance | None:
        """Her words while the talk button is held."""
        chunks = []
        token = self.microphone.open()
        deadline = time.monotonic() + max_ms / 1000
        try:
            while (item := self.inbox.get(deadline - time.monotonic())) is not None:
                if isinstance(item, Sound) and item.token == token:
                    chunks.append(item.samples)
                elif isinstance(item, Release) and item.key == TALK:
                    break
                elif (key := self.key(item)) and key in keys:
                    return key
        finally:
            self.microphone.close()
        return self._utterance(chunks) if chunks else None

    def _utterance(self, chunks) -> Utterance:
        """What she said, trimmed to the speech and a little around it: the room noise before
        and after costs the recognisers accuracy (PocketSphinx hears "polvo" as "dos" with a
        second of noise around it, and right without)."""
        samples = np.concatenate(chunks).astype(np.int16)
        rate = self.microphone.rate
        loudness = Loudness(rate)
        speech = np.flatnonzero(loudness.frames(samples))
        if len(speech):
            start = max(0, (speech[0] * loudness.frame) - int(LEAD_S * rate))
            end = (speech[-1] + 1) * loudness.frame + int(TAIL_S * rate)
            samples = samples[start:end]
        return Utterance(samples, rate)

    # ---- messages -------------------------------------------------------------------------------

    def record(self, max_seconds: int, stop_keys: str) -> a.Recorded:
        """After the tone, until a stop key, ``message_silence_s`` of silence, the limit or ``*``.

        A recording in which nothing was said reports 0 ms, so the engine asks again.
        """
        if self.microphone is None:
            log.warning("a message was asked for, but this kiosk has no microphone")
            return a.Recorded(str(_empty(self.spool)), 0)
        self._play(self.beep, 0, "")
        message = MessageFile(self.spool, self.microphone.rate)
        loudness, heard, quiet, hung_up = Loudness(self.microphone.rate), False, 0.0, False
        token = self.microphone.open()
        log.info("recording a message into %s", message.path.name)
        deadline = time.monotonic() + max_seconds
        try:
            while (item := self.inbox.get(deadline - time.monotonic())) is not None:
                if isinstance(item, Sound) and item.token == token:
                    message.write(item.samples)
                    for speech in loudness.frames(item.samples):
                        heard, quiet = heard or speech, 0.0 if speech else quiet + FRAME_S
                    if quiet >= self.settings.kiosk.message_silence_s:
                        break
                elif (key := self.key(item)) and key in stop_keys:
                    break
        except HungUp:
            hung_up = True
        finally:
            self.microphone.close()
        path = message.finish()
        return a.Recorded(str(path), message.duration_ms if heard else 0, hung_up=hung_up)

    def hang_up(self) -> None:
        """Back to idle: release the speaker and the microphone."""
        self.player.close()
        if self.microphone is not None:
            self.microphone.close()


def _empty(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "message-kiosk-empty.wav"
    path.touch()
    return path
