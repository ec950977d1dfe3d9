"""Outbound alerts: opt-in and opt-out on a real SQLite file, announcing a lesson through the dialer
(fake AMI over a socket: rate limit, opt-out cancels), and ``pallay call`` ringing a phone on the real
Asterisk, landing in the lesson line at its lesson.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3

import pytest
from click.testing import CliRunner

from audio_lessons import listeners, store
from audio_lessons.config import IvrSettings, Settings
from ivr import alerts, outbound
from ivr.agi import AgiChannel
from ivr.commands import call, callbacks
from tests.asterisk import agi_server, ami, asterisk
from tests.test_ami import with_fake
from tests.test_callbacks import SECRET, Clock, Harness, lima, phone_dialplan, rows, until

__all__ = ["agi_server", "ami", "asterisk"]  # fixtures, imported for pytest


def add_lesson(db, lesson_id: int = 3) -> None:
    with store.write(db):
        db["lessons"].insert({"id": lesson_id, "slug": f"l{lesson_id}", "title": "Polvo",
                              "created_at": store.now(), "updated_at": store.now()})


def optins(db_path) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT listener, number, consented_at FROM ivr_alert_optins").fetchall()


def test_opting_in_keeps_the_number_and_opting_out_erases_it(tmp_path):
    db = outbound.connect(tmp_path / "pallay.db")
    who = listeners.pseudonym(SECRET, "+51987654321")
    alerts.subscribe(db, who, "+51987654321", True)
    ((listener, number, consented),) = optins(tmp_path / "pallay.db")
    assert (listener, number) == (who, "+51987654321") and consented.endswith("Z")
    assert listeners.alerts_on(db, who)
    alerts.subscribe(db, who, None, False)
    assert optins(tmp_path / "pallay.db") == []
    assert not listeners.alerts_on(db, who)
    with sqlite3.connect(tmp_path / "pallay.db") as conn:  # her number is nowhere in the file
        dump = "\n".join(conn.iterdump())
    assert "987654321" not in dump
    with pytest.raises(ValueError):
        alerts.subscribe(db, who, "", True)


@with_fake
async def test_announce_rings_subscribers_at_the_rate_limit_and_skips_who_opted_out(
        fake, tmp_path):
    clock = Clock(lima(24, 10))
    db = outbound.connect(tmp_path / "pallay.db")
    add_lesson(db)
    numbers = [f"+5198765432{n}" for n in range(4)]
    for number in numbers:
        alerts.subscribe(db, listeners.pseudonym(SECRET, number), number, True)
    assert alerts.announce(db, IvrSettings(), 3, clock()) == 4
    assert {r["number"] for r in rows(tmp_path / "pallay.db")} == {None}  # read when dialling
    alerts.subscribe(db, listeners.pseudonym(SECRET, numbers[0]), None, False)
    async with Harness(fake, tmp_path, clock, alerts_per_minute=2, max_channels=4) as h:
        await until(lambda: sum(r["status"] != "queued" for r in rows(h.db_path)) >= 3)
        await asyncio.sleep(0.3)  # time for a wrong extra call
        placed = fake.raw_actions("Originate")
    assert len(placed) == 2  # the third waits for the next minute
    statuses = [r["status"] for r in rows(tmp_path / "pallay.db")]
    assert statuses == ["cancelled", "answered", "answered", "queued"]
    assert all("Variable: PALLAY_LESSON=3" in lines for lines in placed)
    channels = {line for lines in placed for line in lines if line.startswith("Channel: ")}
    assert channels == {f"Channel: PJSIP/{n}@pallay-trunk" for n in numbers[1:3]}
    with pytest.raises(Exception, match="No existe la lección 99"):
        alerts.announce(db, IvrSettings(), 99, clock())


def test_pallay_call_rings_her_phone_into_the_lesson_line_at_the_lesson(
        asterisk, agi_server, ami, tmp_path):
    asterisk.add_dialplan("test-phone", phone_dialplan(asterisk))
    arrived: queue.Queue = queue.Queue()

    async def lessons(ch: AgiChannel) -> None:
        arrived.put(ch.args)
        await ch.answer()
        await ch.stream_file("digits/3", "")
        await ch.hangup()

    agi_server.routes["lessons"] = lessons
    (tmp_path / "ami.secret").write_text(asterisk.ami_secret + "\n")
    settings = Settings(data_dir=tmp_path, ivr=IvrSettings(
        ami_port=asterisk.ami_port, outbound_channel="Local/{number}@pallay-test-phone",
        ring_seconds=5))
    db = outbound.connect(settings.db_path)
    add_lesson(db)
    runner = CliRunner()
    done = runner.invoke(call, ["+51987650009", "--lesson", "3"], obj={"settings": settings})
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "Llamada a +5198*****09: contestó"
    secret = listeners.load_or_create_secret(settings.secret_path)
    agi_server.wait_idle()
    (row,) = rows(settings.db_path)
    assert arrived.get(timeout=10) == [listeners.pseudonym(secret, "+51987650009"), "3",
                                       str(row["id"])]
    assert (row["kind"], row["status"], row["number"], row["lesson_id"]) == (
        "manual", "answered", None, 3)
    listed = runner.invoke(callbacks, ["--all"], obj={"settings": settings})
    assert "a mano" in listed.output and "contestó" in listed.output
    assert "987650009" not in listed.output
    refused = runner.invoke(call, ["+51987650009", "--lesson", "99"], obj={"settings": settings})
    assert refused.exit_code == 1 and "No existe la lección 99" in refused.output
