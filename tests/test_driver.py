"""The session driver every front end shares: what Ask, Pause, a hang-up and a failure mean."""

import asyncio
import threading

import numpy as np
import pytest

from audio_lessons import config, store
from audio_lessons.driver import HungUp, Request, Session, Utterance, run_async
from audio_lessons.menu import Caller, MenuEngine
from audio_lessons.session import SessionLog
from audio_lessons.speech.recognizer import FakeRecognizer
from tests.test_menu import MINUTE, STARTER
from tests.test_session import ScriptedMedia, drive

SPEECH = Utterance(np.random.default_rng(1).normal(0, 3000, 8000).astype(np.int16), 8000)


@pytest.fixture
def db(tmp_path):
    return store.connect(tmp_path / "pallay.db")


def session_log(db, tmp_path, listener="her"):
    return SessionLog(db, tmp_path / "messages", channel="phone", device="t", listener=listener)


def engine():
    return MenuEngine(STARTER, config.Settings())


def nav_steps(db):
    return [r["step"] for r in db.query("SELECT step FROM nav_events ORDER BY rowid")]


def test_a_key_pressed_during_the_welcome_answers_the_first_question(db, tmp_path):
    media = drive(engine(), Caller(first_time=True), session_log(db, tmp_path), [
        ("play", "2"),  # she presses 2 while the welcome is still playing
        ("play", None),  # "first_lesson" hint plays out
        ("play_lesson", HungUp(3_000)),
    ])
    method, (hashes, keys) = media.calls[0]
    assert (method, hashes[0], keys) == ("play", "h-welcome", "12")
    assert media.calls[2][0] == "play_lesson"  # the language answer led straight to a lesson
    [listen] = db["listen_events"].rows
    assert (listen["lesson_id"], listen["furthest_ms"], listen["language"]) == (1, 3_000, "es")
    assert nav_steps(db) == ["welcome", "language", "lesson_start", "hangup"]


def test_a_key_during_a_hint_skips_the_hint_and_still_logs_the_lesson_start(db, tmp_path):
    drive(engine(), Caller(language="es"), session_log(db, tmp_path), [
        ("wait_key", "3"),  # lesson 3 from the menu
        ("play", "0"),  # 0 during "keys_help": back to the menu, the lesson never played
        ("wait_key", HungUp()),
    ])
    assert nav_steps(db) == ["welcome", "menu", "lesson_start", "menu", "hangup"]
    [listen] = db["listen_events"].rows
    assert listen["furthest_ms"] == 0


def test_with_a_recogniser_a_question_captures_her_answer_and_recognises_it(db, tmp_path):
    recognizer = FakeRecognizer(["polvo"])
    media = drive(engine(), Caller(language="es", voice=True), session_log(db, tmp_path), [
        ("capture", SPEECH),  # she says "polvo" after the menu
        ("play_lesson", lambda hash_, offset, keys: (None, 2 * MINUTE)),
        ("capture", "0"),  # a key pressed while she could speak is a key: the menu
        ("capture", HungUp()),
    ], recognizer=recognizer)
    assert "polvo" in recognizer.calls[0] and "tres" in recognizer.calls[0]
    [listen] = db["listen_events"].rows
    assert (listen["lesson_id"], listen["input_method"], listen["completed"]) == (3, "voice", 1)
    assert nav_steps(db)[-2:] == ["menu", "hangup"]
    assert [m for m, _ in media.calls].count("capture") == 3


def test_nothing_said_is_silence_and_the_question_is_asked_again(db, tmp_path):
    short = Utterance(np.zeros(100, dtype=np.int16), 8000)
    media = drive(engine(), Caller(language="es", voice=True), session_log(db, tmp_path), [
        ("capture", short),  # a click on the line, not speech
        ("capture", None),  # nothing at all
        ("capture", HungUp()),
    ], recognizer=FakeRecognizer([]))
    asked = [args[0][0] for m, args in media.calls if m == "play"]
    assert asked[1:] == ["h-no_input", "h-no_input"]


def test_a_paused_lesson_waits_for_a_key_and_resumes_where_it_stopped(db, tmp_path):
    media = drive(engine(), Caller(language="es"), session_log(db, tmp_path), [
        ("wait_key", "1"),
        ("play_lesson", ("5", 42_000)),
        ("wait_key", "5"),  # after "paused"
        ("play_lesson", HungUp(50_000)),
    ])
    lessons = [args for m, args in media.calls if m == "play_lesson"]
    assert lessons[1][1] == 42_000
    [listen] = db["listen_events"].rows
    assert (listen["furthest_ms"], listen["seconds_heard"]) == (50_000, 50.0)


def test_a_failure_says_sorry_hangs_up_and_keeps_what_was_logged(db, tmp_path, caplog):
    def broken(*args):
        raise OSError("the sound card went away")

    media = drive(engine(), Caller(language="es"), session_log(db, tmp_path), [
        ("wait_key", "1"), ("play_lesson", broken)])
    assert media.calls[-2:] == [("play", (("h-sorry",), "")), ("hang_up", ())]
    assert "failed; saying sorry" in caplog.text
    assert nav_steps(db) == ["welcome", "menu", "lesson_start"]


def test_the_session_is_sans_io_a_request_at_a_time(db, tmp_path):
    session = Session(engine(), Caller(language="es"), session_log(db, tmp_path))
    request = session.start()
    assert request.method == "play" and request.args[1] == "123089"
    assert session.send(None) == Request("wait_key", ("123089", 6.0))
    assert session.send(HungUp()) == Request("hang_up")
    assert session.send(None) is None and session.done
    session.close()
    assert nav_steps(db) == ["welcome", "menu", "hangup"]


def test_a_call_cut_while_she_is_recognised_keeps_what_her_word_started(db, tmp_path):
    """A shutdown cancels the call as its recogniser works in a thread: the driver waits for it
    (a thread cannot be stopped) and stores what it led to before closing the session."""
    recognising, finish = threading.Event(), threading.Event()

    class SlowRecognizer(FakeRecognizer):
        def recognise(self, samples, rate, words):
            recognising.set()
            assert finish.wait(10)
            return super().recognise(samples, rate, words)

    class LineMedia:  # the phone line's media are async
        def __init__(self, script):
            self.scripted = ScriptedMedia(script)

        def __getattr__(self, method):
            async def call(*args):
                return getattr(self.scripted, method)(*args)
            return call

    async def main():
        session = Session(engine(), Caller(language="es", voice=True), session_log(db, tmp_path),
                          recognizer=SlowRecognizer(["polvo"]))
        media = LineMedia([("capture", SPEECH), ("play_lesson", HungUp(1_000))])
        call = asyncio.create_task(run_async(session, media))
        await asyncio.to_thread(recognising.wait, 10)
        call.cancel()  # the server's shutdown, its grace time over
        await asyncio.sleep(0.1)
        assert not call.done()  # still waiting for her word's decision
        finish.set()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(main())
    assert nav_steps(db) == ["welcome", "menu", "lesson_start"]
