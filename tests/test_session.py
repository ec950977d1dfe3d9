"""The engine, the session log and a real store together: what a call leaves behind."""

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from audio_lessons import actions as a
from audio_lessons import catalog, config, events, listeners, media, store
from audio_lessons.driver import HungUp, Session, run
from audio_lessons.menu import MenuEngine
from audio_lessons.session import SessionLog, caller_for
from tests.conftest import require_program


class ScriptedMedia:
    """A front end that answers the driver as a listener would, from a script.

    Each entry is (method, reply): the reply to the next call of that media method (a callable
    gets the call's arguments; a HungUp is raised). Prompts play out unless the script says
    otherwise; any other unexpected call fails the test.
    """

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def __getattr__(self, method):
        def call(*args):
            self.calls.append((method, args))
            if self.script and self.script[0][0] == method:
                reply = self.script.pop(0)[1]
                if isinstance(reply, HungUp):
                    raise reply
                return reply(*args) if callable(reply) else reply
            if method in ("play", "play_file", "hang_up"):
                return None
            raise AssertionError(f"unexpected {method}{args}; script left: {self.script}")
        return call


def drive(engine, caller, log, script, **kwargs) -> ScriptedMedia:
    media = ScriptedMedia(script)
    run(Session(engine, caller, log, **kwargs), media)
    assert not media.script, f"script not used up: {media.script}"
    return media


@pytest.fixture
def library(tmp_path):
    """A store with two real lessons (espeak-ng speech through the media pipeline) and prompts."""
    require_program("espeak-ng")
    require_program("ffmpeg")
    settings = config.load(tmp_path / "data", environ={})
    db = store.connect(settings.db_path)
    texts = ["Use siempre su casco y sus guantes. " * 3, "El polvo daña los pulmones. " * 3]
    for i, text in enumerate(texts):  # lessons of several seconds: 0.7 s in is not "the end"
        wav = tmp_path / f"l{i}.wav"
        subprocess.run(["espeak-ng", "-v", "es", "-w", str(wav), text], check=True)
        prepared = media.prepare(wav, settings.media_dir, settings.media, wav.name)
        media.register(db, prepared, wav.name)
        lesson_id = catalog.add_lesson(db, slug=f"l{i}", title=f"lección {i}", key=str(i + 1))
        catalog.set_recording(db, lesson_id, "es", prepared.hash, synthetic=True)
        catalog.set_prompt(db, f"title:l{i}", "es", prepared.hash)
    catalog.set_prompt(db, "menu", "es", prepared.hash)
    return settings, db


def test_a_call_leaves_progress_listen_events_and_a_message(library, tmp_path):
    settings, db = library
    secret = listeners.load_or_create_secret(settings.secret_path)
    caller_id = listeners.pseudonym(secret, "+51 987 654 321")
    engine = MenuEngine(catalog.view(db), settings)
    recording = tmp_path / "msg.wav"
    recording.write_bytes(b"RIFF....WAVE")  # the front end's recording, moved into the inbox
    log = SessionLog(db, settings.messages_dir, channel="phone", device="line-1",
                     listener=caller_id)
    caller = caller_for(db, caller_id)
    assert caller.first_time
    drive(engine, caller, log, [
        ("wait_key", "2"),  # language: Quechua
        ("play_lesson", lambda media, offset, keys: ("0", offset + 700)),  # the first lesson, at
        ("wait_key", "8"),  # once; back to the menu after 0.7 s; leave a message
        ("record", a.Recorded(str(recording), 4_000)),
        ("wait_key", "2"),  # keep it
        ("wait_key", HungUp()),
    ])

    assert listeners.language_of(db, caller_id) == "qu"
    assert listeners.progress(db, caller_id) == {1: 700}
    [listen] = db["listen_events"].rows
    assert (listen["lesson_id"], listen["furthest_ms"], listen["listener"]) == (1, 700, caller_id)
    assert listen["channel"] == "phone" and listen["completed"] == 0
    steps = [r["step"] for r in db.query("SELECT step FROM nav_events ORDER BY rowid")]
    assert steps[:4] == ["welcome", "language", "lesson_start", "menu"]
    assert steps[-1] == "hangup"
    [message] = db["messages"].rows
    assert (settings.messages_dir / message["path"]).exists() and not recording.exists()
    assert message["listener"] == caller_id and message["duration_ms"] == 4_000

    # the second call: her language is remembered, no language question, no lesson at once
    caller = caller_for(db, caller_id)
    state, _ = engine.start(caller)
    assert state.node == "menu" and state.language == "qu" and not caller.first_time


def test_anonymous_kiosk_session_records_listens_without_a_listener(library):
    settings, db = library
    engine = MenuEngine(catalog.view(db), settings)
    duration = catalog.get_lesson(db, "l1").recordings["es"].duration_ms
    log = SessionLog(db, settings.messages_dir, channel="kiosk", device="kiosk-sala",
                     listener=None)
    caller = replace(caller_for(db, None), first_time=False)  # a kiosk is not a first call
    drive(engine, caller, log, [
        ("wait_key", "1"),  # language
        ("wait_key", "2"),  # lesson 2
        ("play_lesson", lambda media, offset, keys: (None, duration)),
        ("wait_key", HungUp()),
    ], via="button")
    [listen] = db["listen_events"].rows
    assert listen["input_method"] == "button" and listen["completed"] == 1
    assert listen["listener"] is None and listen["device"] == "kiosk-sala"
    assert db["listeners"].count == 0


def test_store_failure_is_logged_not_raised_into_the_call(library, caplog):
    settings, db = library
    log = SessionLog(db, settings.messages_dir, channel="phone", device="l", listener=None)
    log.apply(a.SaveMessage(str(Path("/nonexistent/recording.wav")), 3000, "es"))
    assert "could not store" in caplog.text
    assert db["messages"].count == 0


def test_every_step_the_engine_logs_is_one_the_store_accepts():
    source = (Path(__file__).parent.parent / "audio_lessons" / "menu.py").read_text()
    steps = set(re.findall(r'LogNav\("(\w+)"', source))
    assert steps and steps <= set(events.NAV_STEPS), steps - set(events.NAV_STEPS)
