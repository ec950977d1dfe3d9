"""Missed-call callbacks: the queue's rules on a real SQLite file, then whole callbacks through the
real Asterisk 22 (tests/asterisk.py): a missed call rings "her phone" (a Local channel that answers
and records with MixMonitor), an unanswered one is retried and given up, and AMI survives a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import queue
import sqlite3
import time
from collections.abc import Callable

import pytest

from audio_lessons import listeners
from audio_lessons.config import IvrSettings, Settings
from ivr import callbacks, outbound
from ivr.agi import AgiChannel
from ivr.ami import AmiClient
from ivr.commands import Outbound, serve_outbound
from ivr.line import LessonLine
from tests.asterisk import (
    CLOSE_RECORDING,
    AgiTestServer,
    Ami,
    Asterisk,
    agi_server,
    ami,
    asterisk,
    restart,
)
from tests.test_ami import FakeAmi, with_fake
from tests.test_asterisk import activity

__all__ = ["agi_server", "ami", "asterisk"]  # fixtures, imported for pytest

SECRET = b"k" * 32
NUMBER = "+51987654321"
LIMA = dt.timezone(dt.timedelta(hours=-5))


class Clock:
    """An injected clock for the dialer and the queue: moves only when the test says."""

    def __init__(self, local: dt.datetime):
        self.now = local.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def lima(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=LIMA)


def rows(db_path) -> list[dict]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM ivr_outbound ORDER BY id")]
    finally:
        conn.close()


# ---- the queue's rules (real SQLite, no Asterisk) -----------------------------------------------


def test_daily_cap_counts_her_local_day_and_merges_repeated_rings(tmp_path):
    settings = IvrSettings(callback_daily_cap=2)
    db = outbound.connect(tmp_path / "pallay.db")
    clock = Clock(lima(24, 8))

    def ring(source: str) -> str:
        return callbacks.request(db, settings, SECRET, NUMBER, clock(), source).status

    def answer_all() -> None:
        for row in outbound.rows(db, "status = 'queued'"):
            assert outbound.claim(db, row.id, clock())
            outbound.finish_try(db, row.id, "answered", clock())

    assert ring("m1") == "queued"
    assert ring("m2") == "merged"  # rang twice before we called back: one callback
    assert ring("m2") == "merged"  # the same event seen twice
    answer_all()
    assert ring("m3") == "queued"
    answer_all()
    assert ring("m4") == "capped"  # two callbacks today already
    assert callbacks.request(db, settings, SECRET, "987 654 321", clock(), "m5").status == "capped"
    clock.advance(hours=15, minutes=59)  # 23:59 in Lima is 04:59 UTC next day: still her day
    assert ring("m6") == "capped"
    clock.advance(minutes=2)  # 00:01 in Lima: a new day
    assert ring("m7") == "queued"
    assert callbacks.request(db, settings, SECRET, "unknown", clock(), "m8").status == "ignored"
    found = rows(tmp_path / "pallay.db")
    assert [r["status"] for r in found] == ["answered", "answered", "capped", "capped", "capped",
                                            "queued"]
    # Raw numbers only where a call is still owed; the pseudonym everywhere for statistics.
    assert [r["number"] for r in found] == [None] * 5 + [NUMBER]
    assert {r["listener"] for r in found} == {listeners.pseudonym(SECRET, NUMBER)}


class Harness:
    """A dialer and the missed-call intake on a fake AMI, with an injected clock."""

    def __init__(self, fake: FakeAmi, tmp_path, clock: Clock, **settings):
        self.fake, self.clock = fake, clock
        self.db_path = tmp_path / "pallay.db"
        self.settings = IvrSettings(ami_port=fake.port, **settings)
        self.ami = AmiClient("127.0.0.1", fake.port, "pallay", "s3cret", timeout=2,
                             backoff_start=0.05, backoff_cap=0.2)
        self.dialer = outbound.Dialer(self.db_path, self.settings, self.ami, clock=clock)
        self.missed = callbacks.MissedCalls(self.settings, SECRET, self.dialer)
        self.missed.attach(self.ami)
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self):
        self.tasks = [asyncio.create_task(self.ami.run()), asyncio.create_task(self.dialer.run())]
        await self.ami.wait_connected(5)
        return self

    async def __aexit__(self, *exc) -> None:
        for task in reversed(self.tasks):  # the dialer first, while AMI still works
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def missed_call(self, number: str, uid: str) -> None:
        self.fake.emit(Event="UserEvent", UserEvent="PallayMissedCall", Number=number,
                       Uniqueid=uid)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


@with_fake
async def test_calls_wait_for_the_morning_and_go_at_opening_time(fake, tmp_path):
    clock = Clock(lima(24, 21, 30))  # she rings at 21:30, after hours
    async with Harness(fake, tmp_path, clock, callback_hours="07:00-20:00") as h:
        h.missed_call(NUMBER, "m1")
        await until(lambda: rows(h.db_path))
        await asyncio.sleep(0.3)  # the dialer had its chance to (wrongly) call
        assert fake.named("Originate") == []
        assert h.dialer.hours.next_opening(clock()) == lima(25, 7).astimezone(dt.UTC)
        clock.advance(hours=9, minutes=29)  # 06:59 next morning: still closed
        h.dialer.wake()
        await asyncio.sleep(0.3)
        assert fake.named("Originate") == []
        clock.advance(minutes=1)
        h.dialer.wake()
        await until(lambda: rows(h.db_path)[0]["status"] == "answered")
    (sent,) = fake.named("Originate")
    assert sent["Channel"] == "PJSIP/+51987654321@pallay-trunk"
    assert sent["Context"] == "pallay-outbound"
    variables = [line.split(": ", 1)[1] for line in fake.raw_actions("Originate")[0]
                 if line.startswith("Variable: ")]
    assert variables == [f"PALLAY_LISTENER={listeners.pseudonym(SECRET, NUMBER)}",
                         "PALLAY_LESSON=", "PALLAY_KIND=callback", "PALLAY_ROW=1"]
    assert rows(h.db_path)[0]["number"] is None


@with_fake
async def test_no_more_calls_at_once_than_the_channel_limit(fake, tmp_path):
    fake.originate_delay = 0.4
    async with Harness(fake, tmp_path, Clock(lima(24, 10)), max_channels=2) as h:
        for n in range(5):
            h.missed_call(f"+5198765430{n}", f"m{n}")
        peak = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while sum(r["status"] == "answered" for r in rows(h.db_path)) < 5:
            peak = max(peak, h.dialer.active)
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
    assert peak == 2
    assert len(fake.named("Originate")) == 5


@with_fake
async def test_the_dialer_stops_when_told_to_as_a_call_ends(fake, tmp_path):
    """Stopped in the very turn a finished call wakes it, the dialer still stops (Python 3.11's
    ``wait_for`` returned the wake-up and dropped the stop: pallay's shutdown hung)."""
    async with Harness(fake, tmp_path, Clock(lima(24, 10))) as h:
        dialer = h.tasks[1]
        for _ in range(3):
            await asyncio.sleep(0.2)  # its round is done: it waits to be woken
            h.dialer.wake()
            dialer.cancel()
            await asyncio.wait([dialer], timeout=5)
            assert dialer.cancelled()
            h.tasks[1] = dialer = asyncio.create_task(h.dialer.run())


@with_fake
async def test_queue_survives_a_restart_and_counts_the_cut_call_as_a_try(fake, tmp_path):
    fake.originate_delay = 30  # she never answers before the restart
    clock = Clock(lima(24, 10))
    async with Harness(fake, tmp_path, clock, callback_tries=2, callback_retry_minutes=10) as h:
        h.missed_call(NUMBER, "m1")
        await until(lambda: fake.named("Originate"))
        assert rows(h.db_path)[0]["status"] == "calling"
    # A clean stop records the cut try; a crash cannot, and leaves the row "calling".
    (row,) = rows(h.db_path)
    assert (row["status"], row["tries"], row["last_result"]) == ("queued", 1, "interrupted")
    with sqlite3.connect(h.db_path) as conn:
        conn.execute("UPDATE ivr_outbound SET status = 'calling', last_result = NULL")
    fake.originate_delay = 0.05
    async with Harness(fake, tmp_path, clock, callback_tries=2, callback_retry_minutes=10) as h:
        await until(lambda: rows(h.db_path)[0]["status"] == "queued")
        (row,) = rows(h.db_path)
        assert (row["tries"], row["last_result"], row["number"]) == (1, "interrupted", NUMBER)
        await asyncio.sleep(0.3)
        assert len(fake.named("Originate")) == 1  # the retry waits its 10 minutes
        clock.advance(minutes=10)
        h.dialer.wake()
        await until(lambda: rows(h.db_path)[0]["status"] == "answered")
    assert rows(h.db_path)[0]["tries"] == 2


@with_fake
async def test_a_callback_she_answered_while_ami_dropped_is_not_placed_again(fake, tmp_path):
    """AMI goes away while her phone rings; she answers and the lesson line marks the row."""
    fake.originate_delay = 30
    clock = Clock(lima(24, 10))
    async with Harness(fake, tmp_path, clock, callback_retry_minutes=10) as h:
        h.missed_call(NUMBER, "m1")
        await until(lambda: fake.named("Originate"))
        row_id = rows(h.db_path)[0]["id"]
        assert f"Variable: PALLAY_ROW={row_id}" in fake.raw_actions("Originate")[0]
        db = outbound.connect(h.db_path)
        assert not outbound.mark_answered(db, row_id, "someone-else", clock())  # not her row
        # She answers: the pallay-outbound context opens the lesson line with (listener, lesson,
        # row) as AGI arguments, and the line marks the row before the dialer hears anything.
        env = {"agi_uniqueid": "pallay-callback-1", "agi_callerid": "", "agi_arg_1":
               listeners.pseudonym(SECRET, NUMBER), "agi_arg_2": "", "agi_arg_3": str(row_id)}
        call = LessonLine(Settings(data_dir=tmp_path), SECRET)._open_call(AgiChannel(None, None, env))
        call.log.db.close()
        assert rows(h.db_path)[0]["status"] == "answered"
        fake.drop()  # the dialer's Originate ends "disconnected"
        await until(lambda: h.dialer.active == 0)
        clock.advance(minutes=11)
        await h.ami.wait_connected(5)
        h.dialer.wake()
        await asyncio.sleep(0.3)
        assert len(fake.named("Originate")) == 1
    (row,) = rows(h.db_path)
    assert (row["status"], row["tries"], row["number"]) == ("answered", 1, None)


@with_fake
async def test_a_callback_still_owed_the_next_afternoon_is_given_up(fake, tmp_path):
    """pallay was off all night and morning: a ring from yesterday evening is no longer a request."""
    fake.originate_delay = 0.05
    clock = Clock(lima(24, 19, 30))
    db = outbound.connect(tmp_path / "pallay.db")
    callbacks.request(db, IvrSettings(), SECRET, NUMBER, clock(), "old")
    clock.advance(hours=17)  # 12:30 the next day, past the 16 hours
    callbacks.request(db, IvrSettings(), SECRET, "+51987650009", clock(), "new")
    async with Harness(fake, tmp_path, clock) as h:
        await until(lambda: [r["status"] for r in rows(h.db_path)] == ["given_up", "answered"])
    old, _new = rows(tmp_path / "pallay.db")
    assert (old["last_result"], old["number"], old["tries"]) == ("expired", None, 0)
    assert len(fake.named("Originate")) == 1


# ---- through the real Asterisk ------------------------------------------------------------------

PHONE_DIALPLAN = """
[pallay-test-phone]
; Her phone: answers after a ring, records what she hears, listens, hangs up.
exten => _[+0-9].,1,Ringing()
 same => n,Wait(0.5)
 same => n,Answer()
 same => n,MixMonitor({rec}/phone-${{FILTER(0123456789,${{EXTEN}})}}.wav)
 same => n,Wait(8)
 same => n,Hangup()
""" + CLOSE_RECORDING.replace("{", "{{").replace("}", "}}") + """
[pallay-test-noanswer]
; Her phone, ringing in her pocket while she works.
exten => _[+0-9].,1,Ringing()
 same => n,Wait(60)
 same => n,Hangup()
"""


def phone_dialplan(asterisk: Asterisk) -> str:
    return PHONE_DIALPLAN.format(rec=f"{asterisk.base_dir}/rec")


def her_recording(asterisk: Asterisk, number: str) -> str:
    """Where her phone records a call (inside the chroot)."""
    return f"{asterisk.base_dir}/rec/phone-{number.lstrip('+')}.wav"


@pytest.fixture
def line(asterisk: Asterisk, agi_server: AgiTestServer, tmp_path):
    """Start pallay's outgoing side on the FastAGI server's loop, as ``pallay serve`` does."""
    asterisk.add_dialplan("test-phone", phone_dialplan(asterisk))
    started: list[Outbound] = []

    def start(**ivr: object) -> Outbound:
        base = {"ami_port": asterisk.ami_port, "callback_hours": "00:00-23:59",
                "outbound_channel": "Local/{number}@pallay-test-phone", "ring_seconds": 5}
        settings = Settings(data_dir=tmp_path, ivr=IvrSettings(**{**base, **ivr}))
        client = AmiClient("127.0.0.1", asterisk.ami_port, asterisk.ami_user, asterisk.ami_secret,
                           backoff_start=0.1, backoff_cap=1.0)
        running = agi_server.run(serve_outbound(settings, SECRET, ami=client))
        agi_server.run(running.ami.wait_connected(10))
        started.append(running)
        return running

    yield start
    for running in started:
        agi_server.run(running.close())
    agi_server.wait_idle()


def missed_call(ami: Ami, number: str) -> None:
    ami.action("Originate", Channel="Local/s@pallay-missed", Application="Wait", Data="5",
               CallerID=f'"" <{number}>', Async="true")


def wait_rows(db_path, condition: Callable[[list[dict]], bool], timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = rows(db_path) if db_path.exists() else []
        if found and condition(found):
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"queue never reached the expected state: {found}")
        time.sleep(0.05)  # polling another process's view of the database


def test_missed_call_is_called_back_into_the_lesson_line_with_her_pseudonym(
        asterisk, agi_server, ami, line, tmp_path):
    arrived: queue.Queue = queue.Queue()

    async def lessons(ch: AgiChannel) -> None:
        arrived.put((ch.args, ch.env.get("agi_context")))
        await ch.answer()
        await ch.stream_file("demo-congrats", "")
        await ch.hangup()

    agi_server.routes["lessons"] = lessons
    running = line()
    number = "+51987650001"
    rang_before = len(running.dialer.rang)
    asked = time.monotonic()
    missed_call(ami, number)
    args, context = arrived.get(timeout=20)
    found = wait_rows(tmp_path / "pallay.db", lambda r: r[0]["status"] == "answered")
    assert args == [listeners.pseudonym(SECRET, number), "", str(found[0]["id"])]
    assert context == "pallay-outbound"
    assert (found[0]["tries"], found[0]["number"]) == (1, None)
    ami.wait_recording(her_recording(asterisk, number), 20)  # closed by Asterisk, not half-written
    heard, _ = activity(asterisk.host_path(her_recording(asterisk, number)))
    assert heard.sum() * 0.02 > 1.0  # she heard the line speak, not silence
    (_, rang_at), = running.dialer.rang[rang_before:]
    (_, event_at), = running.missed.heard[-1:]
    print(f"\ncallback latency: missed call placed -> her phone ringing {rang_at - asked:.3f} s "
          f"(UserEvent -> Originate accepted {rang_at - event_at:.3f} s)")
    assert rang_at - asked < 2.0


def test_her_phone_says_when_its_recording_is_complete(asterisk, ami):
    """The tests read her recording on the event the dialplan sends once the file is closed."""
    asterisk.add_dialplan("test-phone", phone_dialplan(asterisk))
    number = "+51987650008"
    reply = ami.action("Originate", Channel=f"Local/{number}@pallay-test-phone",
                       Application="Playback", Data="demo-congrats", Async="true")
    assert reply["Response"] == "Success", reply
    ami.wait_recording(her_recording(asterisk, number), 30)
    data = asterisk.host_path(her_recording(asterisk, number)).read_bytes()
    # Asterisk writes the sizes into the header when it closes the file: they must be final.
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    at = data.index(b"data", 12)
    assert int.from_bytes(data[at + 4:at + 8], "little") == len(data) - at - 8 > 8000 * 2
    heard, _ = activity(asterisk.host_path(her_recording(asterisk, number)))
    assert heard.sum() * 0.02 > 1.0  # the line's words, not silence


def test_unanswered_callback_is_retried_then_given_up_and_the_number_erased(
        asterisk, agi_server, ami, line, tmp_path):
    line(outbound_channel="Local/{number}@pallay-test-noanswer", ring_seconds=2,
         callback_tries=3, callback_retry_minutes=1 / 60)  # tries 1 s apart
    number = "+51987650002"
    missed_call(ami, number)
    found = wait_rows(tmp_path / "pallay.db", lambda r: r[0]["status"] == "given_up", 40)
    row = found[0]
    assert (row["tries"], row["number"], row["last_result"]) == (3, None, "no-answer")
    assert row["listener"] == listeners.pseudonym(SECRET, number)
    rings = [e for e in ami.events if e.get("Event") == "Newchannel"
             and e.get("Channel", "").startswith(f"Local/{number}@pallay-test-noanswer")
             and e["Channel"].endswith(";2")]
    assert len(rings) == 3


def test_ami_comes_back_after_asterisk_restarts_and_the_live_view_recovers(
        asterisk, agi_server, line, tmp_path):
    hold = asyncio.Event()

    async def lessons(ch: AgiChannel) -> None:
        await ch.answer()
        await asyncio.wait_for(hold.wait(), 30)  # cut short by the restart

    agi_server.routes["lessons"] = lessons
    try:
        check_restart(asterisk, agi_server, line(), tmp_path)
    finally:
        agi_server.loop.call_soon_threadsafe(hold.set)


def check_restart(asterisk: Asterisk, agi_server: AgiTestServer, running: Outbound,
                  tmp_path) -> None:
    live = running.live
    client = Ami(asterisk.ami_port, asterisk.ami_user, asterisk.ami_secret)
    try:
        client.action("Originate", Channel="Local/s@pallay-test-caller", Context="pallay-lessons",
                      Exten="s", Priority="1", Async="true",
                      Variable=[f"__PALLAY_REC={asterisk.base_dir}/rec/restart.wav",
                                "__PALLAY_WAIT=30", "__PALLAY_KEYS=", "__PALLAY_HOLD=0",
                                "__PALLAY_SAY="])
        deadline = time.monotonic() + 10
        while not any(c.channel.startswith("Local/s@pallay-test-caller") and c.state == "Up"
                      for c in live.calls()):
            assert time.monotonic() < deadline, live.calls()
            time.sleep(0.05)
    finally:
        client.close()
    first_sync = live.synced_at
    down = time.monotonic()
    restart(asterisk)
    booted = time.monotonic()
    agi_server.run(running.ami.wait_connected(15))
    back = time.monotonic()
    deadline = time.monotonic() + 10
    while live.synced_at == first_sync:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert running.ami.connects == 2
    assert live.calls() == []  # the call died with Asterisk; no Hangup came, the resync knows
    print(f"\nAsterisk restart took {booted - down:.2f} s; AMI back {back - booted:.2f} s after "
          f"Asterisk was up (backoff cap 1 s)")
    assert back - booted < 1.0 + 0.5
    # And the view follows new calls on the new connection.
    missed_call_client = Ami(asterisk.ami_port, asterisk.ami_user, asterisk.ami_secret)
    try:
        missed_call(missed_call_client, "+51987650003")
        deadline = time.monotonic() + 10
        while not wait_for_row(tmp_path / "pallay.db"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        missed_call_client.close()


def wait_for_row(db_path) -> bool:
    return db_path.exists() and bool(rows(db_path))


def test_settings_section_reads_from_the_environment(tmp_path):
    from audio_lessons import config
    loaded = config.load(tmp_path, environ={"PALLAY_IVR_MAX_CHANNELS": "1",
                                            "PALLAY_IVR_CALLBACK_HOURS": "06:30-19:00"})
    assert (loaded.ivr.max_channels, loaded.ivr.callback_hours) == (1, "06:30-19:00")
    assert dataclasses.asdict(loaded.ivr)["ami_secret_file"] == "ami.secret"
    assert outbound.Hours.parse("06:30-19:00", "America/Lima").allows(lima(24, 6, 30))
    with pytest.raises(Exception, match="callback_hours"):
        outbound.Hours.parse("20:00-07:00", "America/Lima")



# ---- the callback into pallay's own lesson line -------------------------------------------------

PROMPTS = ["welcome", "language:es", "first_lesson", "menu", "para", "marque", "keys_help", "message_option",
           "language_option", "invalid", "no_input", "not_understood", "auto_play", "resume",
           "paused", "lesson_end", "no_more", "record_intro", "record_review", "record_saved",
           "record_empty", "goodbye", "sorry", "confirm_menu", "voice_hint", "alerts_offer",
           "alerts_on", *(f"digit:{d}" for d in range(10))]


def spoken_library(settings: Settings) -> None:
    """Every prompt spoken by espeak-ng (Spanish) and one lesson, prepared as pallay does."""
    import subprocess

    from audio_lessons import catalog, media, starter, store
    from tests.conftest import require_program

    require_program("espeak-ng")
    db = store.connect(settings.db_path)
    work = settings.data_dir / "work"
    work.mkdir(parents=True, exist_ok=True)

    def speak(text: str, name: str) -> str:
        wav = work / f"{name.replace(':', '-')}.wav"
        subprocess.run(["espeak-ng", "-v", "roa/es-419", "-w", str(wav), text], check=True,
                       capture_output=True)
        prepared = media.prepare(wav, settings.media_dir, prompt_media, wav.name)
        media.register(db, prepared, wav.name)
        return prepared.hash

    prompt_media = dataclasses.replace(settings.media, min_seconds=starter.PROMPT_MIN_SECONDS)

    for name in PROMPTS:
        text = "Bienvenida a pallay, lecciones de seguridad." if name == "welcome" else name
        catalog.set_prompt(db, name, "es", speak(text, name), text=text, synthetic=True)
    lesson = catalog.add_lesson(db, slug="casco", title="casco", key="1", keywords=("casco",))
    catalog.set_recording(db, lesson, "es", speak("Use siempre el casco.", "casco"),
                          synthetic=True)
    db.close()


def test_callback_reaches_the_lesson_line_which_knows_her_and_speaks(
        asterisk, agi_server, ami, line, tmp_path):
    from ivr.line import LessonLine

    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    spoken_library(settings)
    asterisk.share(data)
    secret = listeners.load_or_create_secret(settings.secret_path)
    agi_server.routes["lessons"] = LessonLine(settings, secret)
    number = "+51987650004"
    who = listeners.pseudonym(secret, number)
    running = line()
    running.missed.secret = secret  # the same key the lesson line uses
    missed_call(ami, number)
    ami.wait_recording(her_recording(asterisk, number), 30)
    agi_server.wait_idle()
    heard, _ = activity(asterisk.host_path(her_recording(asterisk, number)))
    assert heard.sum() * 0.02 > 1.5  # she heard the welcome, not silence
    conn = sqlite3.connect(settings.db_path)
    steps = conn.execute("SELECT step, listener, channel FROM nav_events ORDER BY at").fetchall()
    conn.close()
    assert steps[0] == ("welcome", who, "phone")
