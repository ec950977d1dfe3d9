"""A kiosk with no network: content on a USB stick out, events on the stick back (real CLI)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from audio_lessons import catalog, outbox, stats, sync
from audio_lessons.cli import main
from tests import sync_helpers as h


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return h.template(tmp_path_factory, "packs", lessons=3, spare=1)


@pytest.fixture
def server(tmp_path, template):
    folder = h.copy_of(template, tmp_path)
    return folder


@pytest.fixture
def edge(tmp_path):
    folder = tmp_path / "edge"
    folder.mkdir()
    (folder / "pallay.toml").write_text('[sync]\nedge = "sala-1"\n')
    return folder


def pallay(data, *args):
    result = CliRunner().invoke(main, ["--data", str(data), *args])
    assert "Traceback" not in result.output
    return result


def test_a_usb_round_trip_moves_content_out_and_events_back_once(server, edge, tmp_path):
    stick = tmp_path / "usb"
    stick.mkdir()
    assert pallay(server, "kiosks", "add", "sala-1").exit_code == 0
    out = pallay(server, "pack", "export", str(stick / "contenido.tar"), "--variant", "kiosk")
    assert out.exit_code == 0 and "4 archivos" in out.output, out.output

    loaded = pallay(edge, "pack", "import", str(stick / "contenido.tar"))
    assert loaded.exit_code == 0 and "contenido nuevo activo" in loaded.output, loaded.output
    edb, sdb = (sync.connect(d / "pallay.db") for d in (edge, server))
    assert catalog.view(edb).lessons.keys() == catalog.view(sdb).lessons.keys()
    again = pallay(edge, "pack", "import", str(stick / "contenido.tar"))
    assert "ya era este" in again.output and "0 archivos" in again.output

    ids = h.write_events(edb, 2500)
    message = h.write_message(edb, h.settings_for(edge))
    trip = pallay(edge, "pack", "events", str(stick / "eventos.tar"))
    assert trip.exit_code == 0 and "2500 escuchas" in trip.output and "1 mensajes" in trip.output
    for _ in range(2):  # a leader who loads the same stick twice doubles nothing
        pallay(server, "pack", "import-events", str(stick / "eventos.tar"))
    held = {r[0] for r in sdb.execute("SELECT id FROM listen_events UNION ALL "
                                      "SELECT id FROM nav_events")}
    assert held == set(ids) and stats.totals(sdb).listens == 2500
    [(path, device)] = sdb.execute("SELECT path, device FROM messages WHERE id = ?",
                                   [message]).fetchall()
    assert device == "sala-1" and (server / "messages" / path).stat().st_size > 1000

    # The kiosk keeps offering every event until a content pack brings the server's word back.
    assert outbox.pending_counts(edb)["listens"] == 2500
    pallay(server, "pack", "export", str(stick / "contenido-2.tar"))
    pallay(edge, "pack", "import", str(stick / "contenido-2.tar"))
    assert outbox.pending_counts(edb) == {"listens": 0, "navs": 0, "messages": 0}
    h.write_events(edb, 10, start=9000)
    last = pallay(edge, "pack", "events", str(stick / "eventos-2.tar"))
    assert "10 escuchas" in last.output and "0 mensajes" in last.output


def test_a_recreated_kiosk_database_is_not_fooled_by_an_old_acknowledgement(server, edge, tmp_path):
    pallay(server, "kiosks", "add", "sala-1")
    edb = sync.connect(edge / "pallay.db")
    h.write_events(edb, 50)
    pallay(edge, "pack", "events", str(tmp_path / "e.tar"))
    pallay(server, "pack", "import-events", str(tmp_path / "e.tar"))
    pallay(server, "pack", "export", str(tmp_path / "c.tar"))
    edb.conn.close()
    for leftover in edge.glob("pallay.db*"):
        leftover.unlink()  # a new SD card: same name, new database, rowids from 1 again
    edb = sync.connect(edge / "pallay.db")
    h.write_events(edb, 30, start=500)
    pallay(edge, "pack", "import", str(tmp_path / "c.tar"))
    assert outbox.pending_counts(edb)["listens"] == 30


def test_stick_mistakes_get_spanish_messages_and_change_nothing(server, edge, tmp_path):
    pallay(server, "pack", "export", str(tmp_path / "c.tar"))
    assert pallay(edge, "pack", "import", str(tmp_path / "c.tar")).exit_code == 0
    edb = sync.connect(edge / "pallay.db")
    before = sync.current_version(edb)
    h.write_events(edb, 5)
    pallay(edge, "pack", "events", str(tmp_path / "e.tar"))

    unknown = pallay(server, "pack", "import-events", str(tmp_path / "e.tar"))
    assert unknown.exit_code == 1 and "no está registrado" in unknown.output
    wrong_kind = pallay(edge, "pack", "import", str(tmp_path / "e.tar"))
    assert wrong_kind.exit_code == 1 and "pack import-events" in wrong_kind.output

    sdb = sync.connect(server / "pallay.db")
    catalog.set_recording(sdb, 1, "es", h.spares(sdb)[0])
    pallay(server, "pack", "export", str(tmp_path / "c2.tar"))
    data = (tmp_path / "c2.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[:len(data) - 60_000])  # the stick was pulled
    cut = pallay(edge, "pack", "import", str(tmp_path / "cut.tar"))
    assert cut.exit_code == 1 and "dañado" in cut.output, cut.output
    assert sync.current_version(edb) == before

    pallay(server, "kiosks", "add", "sala-1")
    central = pallay(server, "pack", "import", str(tmp_path / "c2.tar"))
    assert central.exit_code == 1 and "servidor central" in central.output
    missing = pallay(edge, "pack", "import", str(tmp_path / "no-such.tar"))
    assert missing.exit_code == 1 and "No existe" in missing.output
    nameless = tmp_path / "nameless"
    sync.connect(nameless / "pallay.db").conn.close()
    no_name = pallay(nameless, "pack", "events", str(tmp_path / "x.tar"))
    assert no_name.exit_code == 1 and "[sync] edge" in no_name.output
    assert not (tmp_path / "x.tar").exists()
