"""Spoken answers on the real line: streamed over AudioSocket, ended as soon as she stops.

Her side is pure dialplan: she records what she hears and what she says (MixMonitor ``r()`` and
``t()``, one timeline), waits, says a recorded word (a woman's voice from Asterisk's Spanish
prompts, in a steady line-noise floor) or presses a key, holds, hangs up. pallay's side is the
line's own ``AgiMedia.capture``, then a reply tone: the delay is from the end of her word in what
she said to the reply's first sample in what she heard.
"""

from __future__ import annotations

import dataclasses
import queue
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from audio_lessons import config, listeners, store
from audio_lessons.driver import Utterance
from audio_lessons.errors import ConfigError
from audio_lessons.speech.recognizer import FakeRecognizer
from ivr.answer import Answer
from ivr.audiosocket import AudioSockets, forwards_keys
from ivr.line import AgiMedia, LessonLine
from tests.asterisk import CLOSE_RECORDING, agi_server, ami_caller, asterisk
from tests.heard import RATE, find, samples_of
from tests.test_line import Phone, library

__all__ = ["agi_server", "ami_caller", "asterisk", "library"]  # fixtures, imported for pytest

WORDS = Path("/usr/share/asterisk/sounds/es/digits")  # asterisk-core-sounds-es-wav (make test)
NOISE_DBFS = -50.0  # a quiet line; RECORD FILE's silence detector hears -37 dBFS as sound
LEAD_S, TRAIL_S = 0.2, 2.5  # line noise around her word in the file she plays

CALLER = """
[capture-caller]
exten => s,1,Answer()
 same => n,MixMonitor(${CAP_REC}.wav,r(${CAP_REC}-heard.wav)t(${CAP_REC}-sent.wav))
 same => n,Wait(${CAP_WAIT})
 same => n,UserEvent(CaptureSay,Rec: ${CAP_REC})
 same => n,ExecIf($["${CAP_SAY}" != ""]?Playback(${CAP_SAY}))
 same => n,ExecIf($["${CAP_KEY}" != ""]?SendDTMF(${CAP_KEY},,120))
 same => n,Wait(${CAP_HOLD})
 same => n,Hangup()
""" + CLOSE_RECORDING + """
[capture-line]
exten => s,1,AGI(agi://127.0.0.1:%(port)d/capture)
 same => n,Hangup()
"""


def noisy(samples: np.ndarray, dbfs: float, seed: int) -> np.ndarray:
    rms = 32768 * 10 ** (dbfs / 20)
    noise = np.random.default_rng(seed).normal(0, rms, samples.size)
    return np.clip(np.round(samples + noise), -32768, 32767).astype("<i2")


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def her_word(folder: Path, digit: int) -> tuple[Path, float]:
    """Her word in line noise (a file without extension, for Playback) and where it ends (s)."""
    clean = samples_of(WORDS / f"{digit}.wav")
    frames = clean[: len(clean) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 32768 * 0.01)  # -40 dBFS
    padded = np.concatenate([np.zeros(int(LEAD_S * RATE)), clean, np.zeros(int(TRAIL_S * RATE))])
    path = folder / f"word-{digit}"
    write_wav(path.with_suffix(".wav"), noisy(padded, NOISE_DBFS, digit))
    return path, LEAD_S + (int(loud[-1]) + 1) * 160 / RATE


@pytest.fixture(scope="module")
def capture_line(asterisk, tmp_path_factory):
    """Words to say and a reply tone in a folder Asterisk reads; the dialplan for both sides."""
    if not WORDS.is_dir():
        pytest.skip(f"no recorded Spanish digits at {WORDS} (make install-test installs them)")
    folder = tmp_path_factory.mktemp("capture")
    t = np.arange(int(0.4 * RATE)) / RATE
    write_wav(folder / "reply.wav", 12_000 * np.sin(2 * np.pi * 700 * t))
    asterisk.share(folder)
    asterisk.add_dialplan("capture", CALLER % {"port": asterisk.agi_port})
    return folder


class Probe:
    """pallay's side: capture one answer the way the line does, then play the reply tone."""

    def __init__(self, agi_server, folder: Path, streaming: bool):
        self.folder = folder
        self.settings = config.load(folder / "data", environ={})
        self.sockets = AudioSockets() if streaming else None
        self.results: queue.Queue = queue.Queue()
        self.returned: list[float] = []  # wall clock when each capture returned
        if self.sockets:
            agi_server.run(self.sockets.start())
        agi_server.routes["capture"] = self

    async def __call__(self, channel) -> None:
        await channel.answer()
        media = AgiMedia(channel, self.settings, self.sockets)
        try:
            got = await media.capture("123", 4_000)
            self.returned.append(time.time())
            await channel.stream_file(str(self.folder / "reply"), "")
            await channel.exec("Wait", "2")
        except Exception as exc:  # noqa: BLE001 - the test reports it
            got = exc
        self.results.put(got)


def call(ami, asterisk, name: str, wait: float, say: Path | None = None, key: str = "",
         hold: float = 4.0) -> str:
    """Place her call; return her recording's name (its UserEvent CaptureSay marks her word's
    first sample, by Asterisk's clock with ``timestampevents``)."""
    rec = f"{asterisk.base_dir}/rec/capture-{name}"
    reply = ami.action(
        "Originate", Channel="Local/s@capture-caller", Context="capture-line", Exten="s",
        Priority="1", Async="true", CallerID=f'"{name}" <5190000000>',
        Variable=[f"__CAP_REC={rec}", f"__CAP_WAIT={wait}", f"__CAP_SAY={say or ''}",
                  f"__CAP_KEY={key}", f"__CAP_HOLD={hold}"])
    assert reply["Response"] == "Success", reply
    return rec


def reply_delay(asterisk, rec: str, word: Path, word_end_s: float, folder: Path) -> float:
    """Seconds from the end of her word (in what she said) to the reply tone (in what she heard)."""
    sent, heard = (samples_of(asterisk.host_path(f"{rec}-{side}.wav")) for side in ("sent", "heard"))
    said_at, score = find(sent, samples_of(word)[: RATE // 5], 0, len(sent))
    assert score > 0.9, f"her word is not in what she said (score {score:.2f})"
    end = said_at + int(word_end_s * RATE)
    reply_at, score = find(heard, samples_of(folder / "reply")[: RATE // 5], end - RATE // 2,
                           end + 3 * RATE)
    assert score > 0.9, f"no reply heard after her word (score {score:.2f})"
    return (reply_at - end) / RATE


def test_her_word_ends_the_streamed_capture_within_half_a_second(agi_server, ami_caller, asterisk,
                                                                 capture_line):
    probe = Probe(agi_server, capture_line, streaming=True)
    try:
        delays = []
        for digit in (1, 5, 9):
            word, end_s = her_word(capture_line, digit)
            rec = call(ami_caller, asterisk, f"stream-{digit}", wait=0.8, say=word)
            got = probe.results.get(timeout=30)
            assert isinstance(got, Utterance), got
            assert got.rate == RATE and 0.8 < len(got.samples) / RATE < 3.0, len(got.samples)
            ami_caller.wait_recording(f"{rec}.wav", 30)
            delays.append(reply_delay(asterisk, rec, word, end_s, capture_line))
        print("word end -> reply heard (s):", [round(d, 3) for d in delays])
        # the endpointer's 0.3 s window, its voice-activity hangover and one 30 ms frame
        assert max(delays) < 0.6, delays
        assert not probe.sockets.streaming and not probe.sockets.waiting
    finally:
        agi_server.run(probe.sockets.close())


def test_the_recorded_capture_waits_a_second_of_silence(agi_server, ami_caller, asterisk,
                                                        capture_line):
    """Today's path, for contrast (and the fallback): RECORD FILE needs a whole second."""
    probe = Probe(agi_server, capture_line, streaming=False)
    word, end_s = her_word(capture_line, 5)
    rec = call(ami_caller, asterisk, "record-5", wait=0.8, say=word)
    got = probe.results.get(timeout=30)
    assert isinstance(got, Utterance), got
    ami_caller.wait_recording(f"{rec}.wav", 30)
    delay = reply_delay(asterisk, rec, word, end_s, capture_line)
    print("word end -> reply heard, RECORD FILE (s):", round(delay, 3))
    assert delay > 0.9


def test_a_key_during_the_streamed_capture_is_taken(agi_server, ami_caller, asterisk,
                                                    capture_line):
    probe = Probe(agi_server, capture_line, streaming=True)
    try:
        call(ami_caller, asterisk, "key4", wait=1.0, key="4", hold=8)  # not an answer: ignored
        assert isinstance(probe.results.get(timeout=30), (Utterance, type(None)))
        call(ami_caller, asterisk, "key2", wait=1.0, key="2")
        assert probe.results.get(timeout=30) == "2"
        assert not probe.sockets.streaming
    finally:
        agi_server.run(probe.sockets.close())


def test_without_audiosocket_the_line_records_and_says_why(agi_server, ami_caller, asterisk,
                                                           capture_line, caplog):
    probe = Probe(agi_server, capture_line, streaming=True)
    agi_server.run(probe.sockets.close())
    probe.sockets.port = 9  # nothing listens there: Asterisk cannot connect
    word, _ = her_word(capture_line, 1)
    call(ami_caller, asterisk, "fallback", wait=0.8, say=word)
    assert isinstance(probe.results.get(timeout=30), Utterance)
    assert any("recording her answer instead" in r.getMessage() for r in caplog.records)


def wait_until(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.02)  # polling pallay's state from the test thread


def test_hanging_up_during_the_streamed_capture_is_clean(agi_server, ami_caller, asterisk,
                                                         library, caplog):
    phone = Phone(agi_server, ami_caller, asterisk, library, recognizers=FakeRecognizer())
    number = "51933300001"
    caller = phone.call("gone-capture", number)
    caller.to_menu()  # the menu asks; with voice on, pallay listens after it
    wait_until(lambda: caller.line_uid in phone.line.sockets.streaming)
    caller.hang_up()
    assert caller.done.wait(20)
    phone.agi.wait_idle()
    listener = listeners.pseudonym(listeners.load_or_create_secret(library.secret_path), number)
    steps = [r["step"] for r in store.connect(library.db_path).query(
        "SELECT step FROM nav_events WHERE listener = ? ORDER BY rowid", [listener])]
    assert steps[0] == "welcome" and steps[-1] == "hangup", steps
    assert not phone.line.sockets.streaming and not phone.line.sockets.waiting
    errors = [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]


def test_keys_come_over_audiosocket_only_from_asterisks_that_send_them():
    assert forwards_keys("22.10.1+dfsg+~cs6.17.60671434-1")  # the chroot's, checked above
    assert all(forwards_keys(v) for v in ("22.4.0", "21.9.0", "20.14.1", "23.0.0"))
    assert not any(forwards_keys(v) for v in ("22.3.0", "21.8.2", "20.13.0", "18.26.0", ""))


def test_her_answer_ends_after_her_word_with_some_line_around_it():
    if not WORDS.is_dir():
        pytest.skip(f"no recorded Spanish digits at {WORDS}")
    word = samples_of(WORDS / "5.wav")
    line = noisy(np.concatenate([np.zeros(RATE), word, np.zeros(2 * RATE)]), NOISE_DBFS, 5)
    answer, fed = Answer(), 0
    while not answer.feed(line[fed: fed + 160]):
        fed += 160
        assert fed < len(line), "her word never ended"
    ended_after = (fed + 160) / RATE - 1.0 - len(word) / RATE
    assert 0.1 < ended_after < 0.6, ended_after
    got = answer.utterance()
    assert got.rate == RATE and len(word) / RATE < len(got.samples) / RATE < len(word) / RATE + 2.2
    quiet = Answer()
    assert not any(quiet.feed(c) for c in np.split(noisy(np.zeros(RATE * 2), NOISE_DBFS, 1), 100))
    assert quiet.utterance() is None  # nothing said: silence, not a clip of noise


def test_an_unknown_capture_setting_is_refused_at_start(tmp_path):
    settings = config.load(tmp_path, environ={"PALLAY_IVR_CAPTURE": "websocket"})
    with pytest.raises(ConfigError, match="ivr.capture"):
        LessonLine(settings, b"k" * 32, recognizers=FakeRecognizer())
    assert LessonLine(dataclasses.replace(settings, ivr=dataclasses.replace(
        settings.ivr, capture="record")), b"k" * 32, FakeRecognizer()).sockets is None
