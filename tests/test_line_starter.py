"""The starter pack on the real phone line: every lesson reached by key and by voice, callers at once."""

from __future__ import annotations

import threading
import time

import pytest

from audio_lessons import actions as a
from audio_lessons import catalog, config, listeners, media, starter, store
from audio_lessons.menu import Caller
from audio_lessons.speech import audio as speech_audio
from audio_lessons.speech import espeak
from audio_lessons.speech.pool import RecognizerPool
from audio_lessons.speech.sphinx import SphinxRecognizer
from audio_lessons.synth import Pyttsx3Synthesizer
from ivr.line import LessonLine
from tests import journey
from tests.asterisk import agi_server, ami_caller, asterisk
from tests.conftest import SPHINX_MODEL, require, require_program
from tests.heard import onset_seconds
from tests.test_line import CALLER_CONTEXT, Phone

__all__ = ["agi_server", "ami_caller", "asterisk"]  # fixtures, imported for pytest



def wait_for_the_tone(caller, phone) -> None:
    """Speak once pallay listens: her call streams to the line's AudioSocket server (or, when
    answers are recorded, RECORD FILE writes spool/voice-<call>-*)."""
    spool = phone.settings.data_dir / "spool"
    sockets = phone.line.sockets

    def listening() -> bool:
        if sockets is not None:
            return caller.line_uid in sockets.streaming
        return bool(list(spool.glob(f"voice-{caller.line_uid.replace('.', '-')}-*")))

    deadline = time.monotonic() + 60
    while not listening():
        assert time.monotonic() < deadline, "pallay never listened for her voice"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def starter_data(asterisk, tmp_path_factory):
    """`pallay init`'s starter pack in a folder Asterisk can read, plus her spoken keywords."""
    require_program("espeak-ng")
    settings = config.load(tmp_path_factory.mktemp("starter") / "data", environ={})
    db = store.connect(settings.db_path)
    listeners.load_or_create_secret(settings.secret_path)
    starter.install(db, settings, Pyttsx3Synthesizer(settings.voice, settings.cache_dir))
    voice = settings.data_dir / "her-voice"
    voice.mkdir()
    for word in [le.keywords[0] for le in catalog.list_lessons(db)] + ["sí", "no"]:
        # her word at telephone quality, with the noise floor of a real line (20 dB)
        samples = speech_audio.add_noise(espeak.speak(word, voice="roa/es-419", rate=8000), 20)
        speech_audio.write_wav(voice / f"{word}.wav", samples, 8000)
    settings.messages_dir.mkdir(parents=True, exist_ok=True)
    asterisk.share(settings.data_dir)
    asterisk.add_dialplan("scripted", CALLER_CONTEXT % {"port": asterisk.agi_port})
    return settings


def run_callers(work, lessons) -> dict:
    """Run ``work(lesson)`` for every lesson at once, each as its own caller; return the results."""
    results, threads = {}, []

    def one(lesson):
        try:
            results[lesson.id] = work(lesson)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below, with the others
            results[lesson.id] = exc

    for lesson in lessons:
        threads.append(threading.Thread(target=one, args=(lesson,)))
        threads[-1].start()
    for thread in threads:
        thread.join(180)
    return results


def test_every_starter_lesson_by_key_with_seven_callers_at_once(agi_server, ami_caller,
                                                                 asterisk, starter_data):
    phone = Phone(agi_server, ami_caller, asterisk, starter_data)
    lessons = catalog.list_lessons(store.connect(starter_data.db_path))
    assert len(lessons) == 7

    def listen_by_key(lesson):
        caller = phone.call(f"k{lesson.key}", f"5198800000{lesson.key}")
        menu = caller.choose(lesson.key)
        assert lesson.key in menu.keys
        play = caller.expect(a.PlayLesson, timeout=60)  # after the spoken keys help
        caller.wait(2)
        caller.hang_up()
        assert caller.done.wait(30)
        return play.lesson_id

    results = run_callers(listen_by_key, lessons)
    assert results == {le.id: le.id for le in lessons}
    agi_server.wait_idle(30)
    db = store.connect(starter_data.db_path)
    heard = {r["lesson_id"]: r["furthest_ms"] for r in db.query(
        "SELECT lesson_id, furthest_ms FROM listen_events WHERE input_method = 'key'")}
    assert set(heard) == {le.id for le in lessons}
    assert all(1_000 <= ms <= 5_000 for ms in heard.values()), heard  # about 2 s each


def test_every_starter_lesson_by_voice(agi_server, ami_caller, asterisk, starter_data):
    require((SPHINX_MODEL / "etc").is_dir(), f"Spanish PocketSphinx model at {SPHINX_MODEL}")
    pool = RecognizerPool(lambda: SphinxRecognizer(SPHINX_MODEL))
    phone = Phone(agi_server, ami_caller, asterisk, starter_data, recognizers=pool)
    lessons = catalog.list_lessons(store.connect(starter_data.db_path))
    voice = starter_data.data_dir / "her-voice"

    def choose_by_voice(lesson):
        """Say the lesson's word; answer "did you mean...?" truthfully, by voice."""
        word = lesson.keywords[0]
        caller = phone.call(f"v{lesson.key}", f"5197700000{lesson.key}")
        asked = caller.to_menu()
        said = []
        for _ in range(6):
            if isinstance(asked, a.PlayLesson):
                break
            names = [p.name for p in asked.prompts]
            answer = word
            if "did_you_mean" in names:
                answer = "sí" if f"title:{lesson.slug}" in names else "no"
            wait_for_the_tone(caller, phone)
            caller.say(str(voice / answer))
            said.append(answer)
            asked = caller.expect((a.Ask, a.PlayLesson), timeout=60)
        else:
            raise AssertionError(f"no lesson after saying {said}")
        caller.hang_up()
        assert caller.done.wait(30)
        return asked.lesson_id, said

    results = run_callers(choose_by_voice, lessons)
    reached = {lesson_id: outcome[0] for lesson_id, outcome in results.items()
               if isinstance(outcome, tuple)}
    assert reached == {le.id: le.id for le in lessons}, results
    agi_server.wait_idle(30)


def test_hanging_up_while_her_word_is_recognised_is_clean(agi_server, ami_caller, asterisk,
                                                         starter_data, caplog):
    require((SPHINX_MODEL / "etc").is_dir(), f"Spanish PocketSphinx model at {SPHINX_MODEL}")
    pool = RecognizerPool(lambda: SphinxRecognizer(SPHINX_MODEL))
    phone = Phone(agi_server, ami_caller, asterisk, starter_data, recognizers=pool)
    number = "51955500001"
    caller = phone.call("gone", number)
    caller.to_menu()
    spool = starter_data.data_dir / "spool"
    wait_for_the_tone(caller, phone)
    caller.say(str(starter_data.data_dir / "her-voice" / "polvo"))
    caller.hang_up()  # gone while pallay decides what she said
    assert caller.done.wait(20)
    agi_server.wait_idle(30)
    listener = listeners.pseudonym(listeners.load_or_create_secret(starter_data.secret_path),
                                   number)
    steps = [r["step"] for r in store.connect(starter_data.db_path).query(
        "SELECT step FROM nav_events WHERE listener = ? ORDER BY rowid", [listener])]
    assert steps[-1] == "hangup", steps
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
    assert not list(spool.glob(f"voice-{caller.line_uid.replace('.', '-')}-*"))


def test_a_first_time_caller_hears_the_first_lesson_within_15_s_with_keys_and_30_s_without(
        agi_server, ami_caller, asterisk, starter_data):
    """The starter pack's own prompts on the real line, timed on what she heard."""
    agi_server.routes["lessons"] = LessonLine(
        starter_data, listeners.load_or_create_secret(starter_data.secret_path))
    asterisk.add_dialplan("journey", journey.CONTEXT)
    first_time = Caller(first_time=True)
    with_keys = journey.plan(starter_data, first_time, "1")  # "Para español, marque uno"
    no_keys = journey.plan(starter_data, first_time)
    recs = [journey.call(ami_caller, asterisk, "51944400001", with_keys, hold_s=16),
            journey.call(ami_caller, asterisk, "51944400002", no_keys, hold_s=32)]
    heard = [journey.lesson_heard_at(ami_caller, asterisk, rec, plan) for rec, plan in zip(recs, [
        with_keys, no_keys])]
    assert heard[0] is not None and heard[0] <= 15, (with_keys.presses, heard)
    assert heard[1] is not None and heard[1] <= 30, heard
    hint = media.variant_path(starter_data.media_dir, catalog.view(store.connect(
        starter_data.db_path)).prompts[("first_lesson", "es")], "phone")
    for rec, at in zip(recs, heard):  # each was told how to choose another lesson
        told = onset_seconds(asterisk.host_path(f"{rec}-heard.wav"), hint)
        assert told is not None and told < at, (told, at)
    agi_server.wait_idle(30)


def test_a_woman_saying_a_lesson_number_reaches_it_with_whisper(agi_server, ami_caller, asterisk,
                                                                starter_data):
    """A recorded human voice (not espeak) on the real line, Whisper deciding: she says "dos"
    at the menu and hears lesson 2."""
    from audio_lessons.speech.whisper import WhisperRecognizer
    from tests.models import WHISPER_MISSING, whisper_model
    from tests.test_line_capture import WORDS, her_word

    require(whisper_model().is_dir(), WHISPER_MISSING)
    require(WORDS.is_dir(), f"recorded Spanish digits at {WORDS} (make install-test)")
    pool = RecognizerPool(lambda: WhisperRecognizer(whisper_model()))
    phone = Phone(agi_server, ami_caller, asterisk, starter_data, recognizers=pool)
    lesson = {le.key: le for le in catalog.list_lessons(store.connect(starter_data.db_path))}["2"]
    word, _ = her_word(starter_data.data_dir / "her-voice", 2)
    caller = phone.call("whisper", "51966600002")
    caller.to_menu()
    wait_for_the_tone(caller, phone)
    caller.say(str(word))
    played = caller.expect(a.PlayLesson, timeout=60)
    caller.hang_up()
    assert caller.done.wait(30)
    assert played.lesson_id == lesson.id
    agi_server.wait_idle(30)
