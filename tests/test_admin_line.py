"""The panel's live line page: calls up now (the phone line's snapshot), the queue, announcing.

The live view is fed AMI events the way the phone line's AMI client feeds it; the panel reads what it
wrote through ``audio_lessons.live`` (it never imports ``ivr``).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from admin import create_app
from audio_lessons import catalog, live, outgoing
from audio_lessons.config import IvrSettings
from audio_lessons.synth import FakeSynthesizer
from ivr import alerts, outbound
from ivr.live import LiveCalls
from tests.admin_panel import build, login, token
from tests.conftest import require_program


@pytest.fixture()
def settings(tmp_path):
    require_program("ffmpeg")
    return build(tmp_path / "data", lessons=2)


@pytest.fixture()
def editor(settings):
    app = create_app(settings, {"TESTING": True}, synthesizer=FakeSynthesizer(settings.cache_dir))
    client = app.test_client()
    login(client, "eva")
    return client


def test_a_call_on_the_line_shows_with_its_number_masked(settings, editor):
    view = LiveCalls(snapshot=settings.data_dir / live.SNAPSHOT)
    view.on_event({"Event": "Newchannel", "Uniqueid": "1700.1", "Linkedid": "1700.1",
                   "Channel": "PJSIP/+51987654321-00000001", "ChannelStateDesc": "Ring",
                   "Context": "pallay-lessons"})
    view.identify("1700.1", "ab" * 16)
    page = editor.get("/linea/").text
    assert "escuchando lecciones" in page and "abababab" in page
    assert "987654321" not in page and "PJSIP/***" in page
    view.on_event({"Event": "Hangup", "Uniqueid": "1700.1"})
    assert "Nadie en la línea ahora" in editor.get("/linea/").text


def test_a_line_that_stopped_reporting_says_so(settings, editor):
    assert "no está informando" in editor.get("/linea/").text  # never started
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    live.write(settings.data_dir / live.SNAPSHOT, [live.LiveCall("PJSIP/***-1", "lesson", "Up",
                                                                 old.isoformat(), "")], old)
    page = editor.get("/linea/").text
    assert "no está informando" in page and "PJSIP/***-1" not in page
    (settings.data_dir / live.SNAPSHOT).write_text("{roto")
    assert "no está informando" in editor.get("/linea/").text


def test_announcing_a_lesson_queues_a_call_per_subscriber_without_showing_numbers(settings,
                                                                                  editor):
    assert "todavía no se inició" in editor.get("/linea/").text
    db = outbound.connect(settings.db_path)  # the phone line's tables, as when it first starts
    for n, number in enumerate(("+51911111111", "+51922222222")):
        alerts.subscribe(db, f"{n}" * 32, number, True)
    page = editor.get("/linea/").text
    assert "2 oyentes pidieron" in page
    answer = editor.post("/linea/anunciar", data={"csrf": token(editor), "lesson": "1"})
    assert answer.status_code == 302
    rows = outgoing.queue(db)
    assert [(r.kind, r.status, r.lesson_id) for r in rows] == [("alert", "queued", 1)] * 2
    page = editor.get("/linea/").text
    assert "Aviso en cola para 2 oyentes" in page and "aviso de lección" in page
    assert "911111111" not in page and "922222222" not in page
    missing = editor.post("/linea/anunciar", data={"csrf": token(editor), "lesson": "99"})
    assert "No existe la lección" in editor.get(missing.headers["Location"]).text


def test_the_phone_line_announces_through_the_same_core_rule(settings):
    db = outbound.connect(settings.db_path)
    alerts.subscribe(db, "c" * 32, "+51933333333", True)
    now = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    assert alerts.announce(db, IvrSettings(), 2, now) == 1
    (row,) = outbound.rows(db)
    assert (row.kind, row.number, row.lesson_id, row.max_tries) == ("alert", None, 2, 3)
    with pytest.raises(catalog.CatalogError):
        outgoing.announce(db, IvrSettings(), 99, now)


def test_a_viewer_cannot_open_the_line_page(settings):
    app = create_app(settings, {"TESTING": True}, synthesizer=FakeSynthesizer(settings.cache_dir))
    viewer = app.test_client()
    login(viewer, "vero")
    assert viewer.get("/linea/").status_code == 403
    assert viewer.post("/linea/anunciar", data={"csrf": token(viewer), "lesson": "1"}) \
        .status_code == 403


def test_the_snapshot_is_replaced_whole(tmp_path):
    path = tmp_path / live.SNAPSHOT
    now = dt.datetime.now(dt.UTC)
    live.write(path, [live.LiveCall("Local/***@x-1;1", "outbound", "Up", now.isoformat(), "ab")],
               now)
    assert json.loads(path.read_text())["calls"][0]["kind"] == "outbound"
    assert [p.name for p in tmp_path.iterdir()] == [live.SNAPSHOT]
    assert live.read(path, now).calls[0].listener == "ab"
