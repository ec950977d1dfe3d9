"""The lesson line on a real Asterisk: a scripted caller navigates, pallay's store shows what happened.

The caller is a second AGI script on the caller's side of a Local channel, so the test presses keys
exactly when pallay is waiting for them (pallay's line reports each action it performs to an observer).
MixMonitor on the caller's side records what she heard.
"""

from __future__ import annotations

import asyncio
import queue
import subprocess
import threading
import wave
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from audio_lessons import actions as a
from audio_lessons import catalog, config, listeners, media, starter, store
from ivr.agi import AgiChannel
from ivr.line import LessonLine
from tests.asterisk import AgiTestServer, Ami, Asterisk, agi_server, ami_caller, asterisk
from tests.conftest import require_program

__all__ = ["agi_server", "ami_caller", "asterisk"]  # fixtures, imported for pytest

CALLER_CONTEXT = """
[pallay-test-scripted]
exten => s,1,Answer()
 same => n,MixMonitor(${PALLAY_REC})
 same => n,AGI(agi://127.0.0.1:%(port)d/caller,${PALLAY_CALLER})
 same => n,Hangup()
"""
PROMPT_WORDS = {
    "welcome": "Bienvenida a pallay.", "language:es": "Para español marque uno.",
    "language:qu": "Quechua, iskay.", "first_lesson": "Primera lección.",
    "menu": "Menú principal.", "para": "Para", "marque": "marque", "keys_help": "Teclas.",
    "message_option": "Mensaje, ocho.", "language_option": "Idioma, nueve.",
    "invalid": "Tecla no válida.", "no_input": "No escuché.", "not_understood": "No entendí.",
    "auto_play": "Una lección.", "resume": "Continuar uno, inicio dos.", "paused": "Pausa.",
    "lesson_end": "Terminó.", "no_more": "No hay más.", "record_intro": "Deje su mensaje.",
    "record_review": "Escuchar uno, guardar dos.", "record_saved": "Guardado.",
    "record_empty": "No escuchamos.", "goodbye": "Adiós.", "sorry": "Disculpe.",
    "confirm_menu": "Salir uno.", "voice_hint": "Puede hablar.", "alerts_offer": "Aviso uno.",
    "alerts_on": "Le llamaremos.",
    **{f"digit:{d}": w for d, w in enumerate(
        ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"])},
}
LESSONS = {  # slug: spoken text; the first about 40 s, so that seeking and resuming stay inside
    "casco": "Use siempre el casco y los guantes cuando trabaje en la cancha. " * 10,
    "terreno": "Camine despacio en el terreno suelto y mire dónde pisa. " * 5,
    "polvo": "El polvo de la roca daña los pulmones, use mascarilla y moje el material. " * 4,
}


library_question: list[str] = []  # what a caller says when she leaves a message


@pytest.fixture(scope="module")
def library(asterisk: Asterisk, tmp_path_factory):
    """A data folder Asterisk can read (bind-mounted), with spoken prompts and three lessons."""
    require_program("espeak-ng")
    root = tmp_path_factory.mktemp("line")
    settings = config.load(root / "data", environ={})
    prompt_media = replace(settings.media, min_seconds=starter.PROMPT_MIN_SECONDS)  # "dos": 0.3 s
    db = store.connect(settings.db_path)
    work = root / "work"
    work.mkdir()

    def speak(text: str, name: str) -> media.Prepared:
        wav = work / f"{abs(hash(name))}.wav"
        subprocess.run(["espeak-ng", "-v", "roa/es-419", "-s", "170", "-w", str(wav), text],
                       check=True, capture_output=True)
        prepared = media.prepare(wav, settings.media_dir, prompt_media, wav.name)
        media.register(db, prepared, wav.name)
        return prepared

    for name, text in PROMPT_WORDS.items():
        catalog.set_prompt(db, name, "es", speak(text, name).hash, text=text, synthetic=True)
    for key, (slug, text) in enumerate(LESSONS.items(), start=1):
        lesson_id = catalog.add_lesson(db, slug=slug, title=slug, key=str(key), keywords=(slug,))
        catalog.set_recording(db, lesson_id, "es", speak(text, slug).hash, synthetic=True)
        catalog.set_prompt(db, f"title:{slug}", "es", speak(slug, f"t{slug}").hash)
    question = speak("Hola, quería preguntar cómo lavar la ropa después de trabajar con mercurio.",
                     "question")
    settings.messages_dir.mkdir(parents=True, exist_ok=True)
    asterisk.share(settings.data_dir)
    library_question[:] = [str(media.variant_path(settings.media_dir, question.hash, "phone")
                               .with_suffix(""))]
    asterisk.add_dialplan("scripted", CALLER_CONTEXT % {"port": asterisk.agi_port})
    return settings


@dataclass
class Caller:
    """One scripted caller: the test sends her commands; pallay's actions come back."""

    name: str
    commands: queue.Queue = field(default_factory=queue.Queue)
    actions: queue.Queue = field(default_factory=queue.Queue)
    done: threading.Event = field(default_factory=threading.Event)
    seen: list = field(default_factory=list)
    channel: str = ""  # her side of the call
    line_uid: str = ""  # pallay's side of the call (AGI unique id)
    ami: Ami | None = None

    def expect(self, kind, timeout: float = 30):
        """Wait until pallay performs an action (or gets an event) of ``kind``; return it."""
        while True:
            try:
                item = self.actions.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {kind} from pallay; last seen: "
                                     f"{self.seen[-4:]}") from None
            self.seen.append(item)
            if isinstance(item, kind):
                return item

    def press(self, keys: str) -> None:
        """Press keys after what she was told to do before (AMI PlayDTMF on her channel)."""
        self.commands.put(("dtmf", keys))

    def _press_now(self, keys: str) -> None:
        for key in keys:
            reply = self.ami.action("PlayDTMF", Channel=self.channel, Digit=key, Duration="250")
            assert reply["Response"] == "Success", reply

    def to_menu(self) -> a.Ask:
        """A first call: answer the language question (Spanish), then leave the first lesson,
        which plays at once, for the menu."""
        self.expect(a.Ask)
        self.press("1")
        self.expect(a.PlayLesson)
        self.press("0")
        return self.expect(a.Ask)

    def choose(self, key: str) -> a.Ask:
        """A first call: to the menu, then press ``key`` in it."""
        menu = self.to_menu()
        self.press(key)
        return menu

    def say(self, sound: str) -> None:
        self.commands.put(("say", sound))

    def wait(self, seconds: float) -> None:
        self.commands.put(("wait", seconds))

    def hang_up(self) -> None:
        self.commands.put(("hangup", ""))


async def next_command(caller: Caller, timeout: float = 60) -> tuple[str, str]:
    """Her next instruction from the test, without holding one of the loop's worker threads
    (pallay's line needs them for its store writes)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return caller.commands.get_nowait()
        except queue.Empty:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"caller {caller.name}: no instruction for {timeout} s") from None
            await asyncio.sleep(0.02)


class Phone:
    """Routes for both sides: pallay's lesson line and the scripted callers."""

    def __init__(self, agi: AgiTestServer, ami: Ami, asterisk: Asterisk, settings,
                 recognizers=None):
        self.agi, self.ami, self.asterisk, self.settings = agi, ami, asterisk, settings
        self.callers: dict[str, Caller] = {}
        secret = listeners.load_or_create_secret(settings.secret_path)
        self.line = LessonLine(settings, secret, recognizers, observer=self._observe)
        agi.routes["lessons"] = self.line
        agi.routes["caller"] = self._caller

    def _observe(self, channel: AgiChannel, action) -> None:
        name = channel.caller_id
        if name in self.callers:
            self.callers[name].line_uid = channel.unique_id
            self.callers[name].actions.put(action)

    async def _caller(self, ch: AgiChannel) -> None:
        me = self.callers[ch.args[0]]
        me.channel = ch.env["agi_channel"]
        try:
            while True:
                kind, value = await next_command(me)
                if kind == "dtmf":
                    await asyncio.to_thread(me._press_now, value)
                elif kind == "wait":
                    await ch.exec("Wait", str(value))
                elif kind == "say":
                    await ch.stream_file(value, "")
                else:
                    await ch.hangup()
                    return
        finally:
            me.done.set()

    def call(self, name: str, number: str) -> Caller:
        """Place a call from ``number`` into the lesson line; return her script handle."""
        caller = Caller(name, ami=self.ami)
        self.callers[number] = caller
        self.callers[name] = caller
        rec = f"{self.asterisk.base_dir}/rec/{name}.wav"
        caller.recording = self.asterisk.host_path(rec)
        reply = self.ami.action(
            "Originate", Channel="Local/s@pallay-test-scripted", Context="pallay-lessons",
            Exten="s", Priority="1", Async="true", CallerID=f'"{name}" <{number}>',
            Variable=[f"__PALLAY_REC={rec}", f"__PALLAY_CALLER={name}"])
        assert reply["Response"] == "Success", reply
        return caller


@pytest.fixture
def phone(agi_server, ami_caller, asterisk, library):
    return Phone(agi_server, ami_caller, asterisk, library)


def finish(phone: Phone, caller: Caller) -> None:
    caller.hang_up()
    assert caller.done.wait(20)
    phone.agi.wait_idle()


def heard_seconds(path: Path) -> float:
    """Seconds of sound (frames above -45 dBFS) in what the caller heard."""
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    level = 20 * np.log10(np.maximum(np.sqrt((frames ** 2).mean(axis=1)) / 32768, 1e-9))
    return float((level > -45).sum() * 0.02)


def db_of(phone: Phone):
    return store.connect(phone.settings.db_path)


def test_every_lesson_by_key_is_heard_and_logged(phone):
    for key, slug in enumerate(LESSONS, start=1):
        caller = phone.call(f"key{key}", f"5199900000{key}")
        caller.choose(str(key))
        play = caller.expect(a.PlayLesson)
        caller.wait(3)
        caller.press("0")  # back to the menu after about 3 s
        caller.expect(a.Ask)
        finish(phone, caller)
        lesson = catalog.get_lesson(db_of(phone), slug)
        assert play.lesson_id == lesson.id
        row = db_of(phone).execute(
            "SELECT furthest_ms, channel, input_method FROM listen_events WHERE lesson_id = ? "
            "ORDER BY rowid DESC LIMIT 1", [lesson.id]).fetchone()
        assert row[1:] == ("phone", "key")
        assert 2_500 <= row[0] <= 6_000, row  # she heard about 3 s of it (prompts cut by keys)
        assert heard_seconds(caller.recording) > 4  # welcome, menu and 3 s of lesson, really heard


def test_every_playback_key_and_resume_on_a_second_call(phone):
    number = "51999111222"
    caller = phone.call("keys", number)
    caller.choose("1")  # lesson 1
    caller.expect(a.PlayLesson)
    steps = [("9", lambda p, o: o >= p + 9_000),   # forward 10 s
             ("7", lambda p, o: o <= p - 9_000 or o == 0),  # back 10 s
             ("8", lambda p, o: o == 0)]           # replay
    for key, check in steps:
        caller.wait(1.5)
        caller.press(key)
        pressed = caller.expect(a.Key)
        play = caller.expect(a.PlayLesson)
        assert pressed.digit == key and pressed.position_ms > 1_000
        assert check(pressed.position_ms, play.offset_ms), (key, pressed, play.offset_ms)
    caller.wait(2)
    caller.press("5")  # pause
    caller.expect(a.Pause)
    caller.press("5")  # resume where paused
    resumed = caller.expect(a.PlayLesson)
    assert resumed.offset_ms >= 1_500
    caller.wait(13)  # past the 10 s mark so that a later call offers to resume
    caller.press("1")  # next lesson
    nxt = caller.expect(a.PlayLesson)
    assert nxt.lesson_id != resumed.lesson_id
    caller.wait(1)
    caller.press("4")  # previous lesson: the first one again, which asks to resume
    caller.expect(a.Ask)
    caller.press("2")  # from the beginning
    assert caller.expect(a.PlayLesson).offset_ms == 0
    caller.wait(12)
    caller.hang_up()  # hang up mid-lesson: the place is kept
    assert caller.done.wait(20)
    phone.agi.wait_idle()

    pseudonym = listeners.pseudonym(listeners.load_or_create_secret(phone.settings.secret_path),
                                    number)
    saved = listeners.progress(db_of(phone), pseudonym)
    first = catalog.get_lesson(db_of(phone), "casco").id
    assert 10_000 <= saved[first] <= 16_000, saved

    again = phone.call("again", number)
    again.expect(a.Ask)  # the menu: her language is remembered
    again.press("1")
    resume = again.expect(a.Ask)
    assert [p.name for p in resume.prompts] == ["resume"]
    again.press("1")
    play = again.expect(a.PlayLesson)
    assert play.offset_ms == saved[first]
    finish(phone, again)


def test_a_message_is_recorded_and_found_in_the_store(phone):
    caller = phone.call("msg", "51999333444")
    caller.choose("8")  # leave a message
    caller.expect(a.Record)
    caller.say(library_question[0])  # about 4 s of speech from her side
    caller.press("#")
    caller.expect(a.Ask)  # review
    caller.press("2")  # keep it
    caller.expect(a.Ask)  # back to the menu with "saved"
    finish(phone, caller)
    rows = list(db_of(phone).query("SELECT * FROM messages ORDER BY created_at DESC LIMIT 1"))
    assert rows and rows[0]["channel"] == "phone" and rows[0]["duration_ms"] >= 2_000
    assert (phone.settings.messages_dir / rows[0]["path"]).stat().st_size > 16_000


def hang_up_during_welcome(caller: Caller) -> None:
    caller.expect(a.Ask)  # the welcome (which opens the language question) is playing
    caller.hang_up()


def hang_up_during_lesson(caller: Caller) -> None:
    caller.choose("2")
    caller.expect(a.PlayLesson)
    caller.wait(2)
    caller.hang_up()


def hang_up_during_recording(caller: Caller) -> None:
    caller.choose("8")
    caller.expect(a.Record)
    caller.say(library_question[0])
    caller.hang_up()  # no "#": she just hangs up after speaking


@pytest.mark.parametrize("scenario", [hang_up_during_welcome, hang_up_during_lesson,
                                      hang_up_during_recording])
def test_hanging_up_at_any_moment_leaves_a_correct_record_and_no_error(phone, scenario, caplog):
    number = f"51966{abs(hash(scenario.__name__)) % 10**6:06d}"
    caller = phone.call(scenario.__name__[:20], number)
    scenario(caller)
    assert caller.done.wait(20)
    phone.agi.wait_idle()
    listener = listeners.pseudonym(listeners.load_or_create_secret(phone.settings.secret_path),
                                   number)
    db = db_of(phone)
    steps = [r["step"] for r in db.query(
        "SELECT step FROM nav_events WHERE listener = ? ORDER BY rowid", [listener])]
    assert steps[0] == "welcome" and steps[-1] == "hangup", steps
    # what she chose (the first lesson, played at once to a first-time caller, she left at once)
    listens = list(db.query("SELECT * FROM listen_events WHERE listener = ? AND "
                            "input_method != 'auto'", [listener]))
    messages = list(db.query("SELECT * FROM messages WHERE listener = ?", [listener]))
    if scenario is hang_up_during_lesson:
        [listen] = listens
        assert 1_500 <= listen["furthest_ms"] <= 4_000, listen
        assert listeners.progress(db, listener)[listen["lesson_id"]] == listen["furthest_ms"]
    else:
        assert listens == []
    if scenario is hang_up_during_recording:
        [message] = messages  # what she said before hanging up is kept
        assert message["duration_ms"] >= 2_000
        assert (phone.settings.messages_dir / message["path"]).exists()
    else:
        assert messages == []
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [], [r.getMessage() for r in errors]
    assert not list((phone.settings.data_dir / "spool").glob("*")), "a scratch file was left"
