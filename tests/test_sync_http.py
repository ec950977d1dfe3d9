"""An edge syncing with a real admin server on loopback (waitress in its own process)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from audio_lessons import catalog, outbox, stats, store, sync
from audio_lessons.cli import main
from audio_lessons.errors import SyncError
from kiosk import sync as client
from tests import sync_helpers as h


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """A server data folder with 3 published lessons, a prompt and 3 spare recordings."""
    return h.template(tmp_path_factory, "sync-template", lessons=3, spare=3)


@pytest.fixture
def server(tmp_path, template):
    """(settings, db, token of edge sala-1, running waitress) of a fresh copy of the template."""
    folder = h.copy_of(template, tmp_path)
    settings = h.settings_for(folder)
    db = sync.connect(settings.db_path)
    token = h.add_edge(db, "sala-1")
    running = h.WaitressProcess(folder)
    yield settings, db, token, running
    running.stop()
    db.conn.close()


def published_files(db, settings) -> dict[str, str]:
    manifest = sync.build_manifest(db, settings.media_dir)
    return {f.name: f.sha256 for f in manifest.wanted(["kiosk"])}


def edge_files(settings) -> dict[str, str]:
    return {p.name: sync.sha256_of(p) for p in settings.media_dir.iterdir()}


def test_a_kiosk_gets_the_lessons_and_the_server_keeps_its_events_once(server, tmp_path):
    srv, sdb, token, running = server
    edge = h.make_edge(tmp_path / "edge", running.url, token)
    edb = sync.connect(edge.db_path)
    ids = h.write_events(edb, 1500)
    messages = [h.write_message(edb, edge) for _ in range(2)]

    report = client.sync_once(edge)

    assert report.switched and report.sent == {"listens": 1500, "navs": 1500, "messages": 2}
    assert [le.slug for le in catalog.list_lessons(edb)] == ["leccion-1", "leccion-2",
                                                              "leccion-3"]
    assert edge_files(edge) == published_files(sdb, srv)  # every kiosk file, byte for byte
    assert catalog.view(edb).prompts == catalog.view(sdb).prompts
    held = {r[0] for r in sdb.execute("SELECT id FROM listen_events UNION ALL "
                                      "SELECT id FROM nav_events WHERE device = 'sala-1'")}
    assert held == set(ids)
    assert stats.totals(sdb).listens == 1500  # the rollups counted each event once
    for message_id in messages:
        row = sdb.execute("SELECT path, device FROM messages WHERE id = ?", [message_id]).fetchone()
        assert row[1] == "sala-1"
        assert (srv.messages_dir / row[0]).read_bytes() == (
            edge.messages_dir / f"{message_id}.wav").read_bytes()

    again = client.sync_once(edge)
    assert not again.switched and again.bytes_in == 0 and sum(again.sent.values()) == 0


def test_events_sent_again_after_a_lost_acknowledgement_are_kept_once(server, tmp_path):
    _srv, sdb, token, running = server
    edge = h.make_edge(tmp_path / "edge", running.url, token)
    edb = sync.connect(edge.db_path)
    h.write_events(edb, 700)
    h.write_message(edb, edge)
    client.sync_once(edge)
    with store.write(edb):  # a power cut after the server stored them, before the kiosk marked
        edb.execute("DELETE FROM sync_sent")

    report = client.sync_once(edge)

    assert report.sent == {"listens": 700, "navs": 700, "messages": 1}  # sent and acked again
    assert sdb.execute("SELECT count(*) FROM listen_events").fetchone()[0] == 700
    assert sdb.execute("SELECT count(*) FROM nav_events").fetchone()[0] == 700
    assert sdb.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    assert stats.totals(sdb).listens == 700
    assert outbox.pending_counts(edb) == {"listens": 0, "navs": 0, "messages": 0}


def test_after_a_leader_changes_one_lesson_only_its_file_moves(server, tmp_path):
    _srv, sdb, token, running = server
    edge = h.make_edge(tmp_path / "edge", running.url, token)
    client.sync_once(edge)
    a, b, c = (catalog.get_lesson(sdb, f"leccion-{n}").recordings["es"].media for n in (1, 2, 3))
    welcome = catalog.view(sdb).prompts[("welcome", "es")]
    spare_a, spare_b = h.spares(sdb)[:2]
    catalog.set_recording(sdb, catalog.get_lesson(sdb, "leccion-2").id, "es", spare_a)

    moved = client.Client.from_settings(edge)
    report = client.sync_once(edge, moved)

    assert report.switched and report.files == 1 and moved.traffic.files == 1
    assert moved.traffic.bytes_in < 1.2 * (edge.media_dir / f"{spare_a}.kiosk.wav").stat().st_size
    # the replaced file stays one switch longer, for a session that started before the switch
    assert set(edge_files(edge)) == kiosk_names(a, b, c, welcome, spare_a)

    catalog.set_recording(sdb, catalog.get_lesson(sdb, "leccion-3").id, "es", spare_b)
    catalog.update_lesson(sdb, catalog.get_lesson(sdb, "leccion-1").id, published=False)
    client.sync_once(edge)

    edb = sync.connect(edge.db_path)
    assert [le.slug for le in catalog.list_lessons(edb)] == ["leccion-2", "leccion-3"]
    assert set(edge_files(edge)) == kiosk_names(a, c, welcome, spare_a, spare_b)  # b is gone


def kiosk_names(*hashes: str) -> set[str]:
    return {f"{x}.kiosk.wav" for x in hashes}


def test_a_wrong_token_gets_401_and_a_spanish_message(server, tmp_path):
    srv, _sdb, token, running = server
    for header in ({"Authorization": "Bearer not-the-token"}, {}):
        request = urllib.request.Request(running.url + "/api/sync/v1/manifest", headers=header)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        assert "clave" in json.loads(refused.value.read())["message"]

    edge = h.make_edge(tmp_path / "edge", running.url, "not-the-token")
    result = CliRunner().invoke(main, ["--data", str(edge.data_dir), "kiosk", "sync",
                                       "--server", running.url])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "rechazó la clave" in result.output

    h.make_edge(tmp_path / "edge", running.url, token)
    assert client.sync_once(edge).switched
    CliRunner().invoke(main, ["--data", str(srv.data_dir), "kiosks", "revoke", "sala-1"])
    with pytest.raises(SyncError, match="401"):
        client.sync_once(edge)


@pytest.mark.parametrize("cuts", [1, 3])
def test_a_download_cut_half_way_resumes_where_it_stopped(server, tmp_path, cuts):
    srv, sdb, token, running = server
    proxy = h.CuttingProxy(int(running.url.rsplit(":", 1)[1]), cuts=cuts, after=50_000)
    edge = h.make_edge(tmp_path / "edge", proxy.url, token)
    fast = client.Client(proxy.url, token, backoff=0.01)
    try:
        report = client.sync_once(edge, fast)
    finally:
        proxy.stop()
    assert report.switched
    assert edge_files(edge) == published_files(sdb, srv)
    ranges = [r for r in proxy.requests if b"Range: bytes=" in r]
    assert proxy.cut >= 1 and len(ranges) == proxy.cut  # every cut download was resumed
    total = sum(p.stat().st_size for p in edge.media_dir.iterdir())
    assert fast.traffic.bytes_in < total + 50_000  # resumed, not fetched again from the start


def test_a_damaged_file_is_refused_by_its_hash_and_fetched_again(server, tmp_path):
    srv, sdb, token, running = server
    edge = h.make_edge(tmp_path / "edge", running.url, token)
    manifest = sync.build_manifest(sdb, srv.media_dir)
    staging = sync.Staging(edge.data_dir / "sync" / "staging")
    victim = manifest.wanted(["kiosk"])[0]
    staging.part(victim).write_bytes(b"\0" * victim.size)  # right size, wrong bytes

    assert client.sync_once(edge).switched
    assert sync.sha256_of(edge.media_dir / victim.name) == victim.sha256
    assert not any(staging.folder.glob("*.part"))


def test_when_the_server_keeps_sending_bad_bytes_the_old_content_stays(server, tmp_path):
    srv, sdb, token, running = server
    edge = h.make_edge(tmp_path / "edge", running.url, token)
    client.sync_once(edge)
    edb = sync.connect(edge.db_path)
    before = (sync.current_version(edb), edge_files(edge))
    spare = h.spares(sdb)[0]
    catalog.set_recording(sdb, catalog.get_lesson(sdb, "leccion-1").id, "es", spare)
    sync.build_manifest(sdb, srv.media_dir)  # hashes cached as published ...
    path = srv.media_dir / f"{spare}.kiosk.wav"
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # ... then the disk under the server rots the file (same size, same mtime)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    with pytest.raises(SyncError, match="dañado"):
        client.sync_once(edge)
    assert (sync.current_version(edb), edge_files(edge)) == before


def test_the_openapi_document_is_served_valid_and_covers_every_route(server):
    from openapi_spec_validator import validate

    srv, _sdb, _token, running = server
    with urllib.request.urlopen(running.url + "/api/sync/v1/openapi.json", timeout=10) as r:
        spec = json.loads(r.read())
    validate(spec)
    app = h.app_for(srv)
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("sync."):
            path = rule.rule.removeprefix("/api/sync/v1").replace("<", "{").replace(">", "}")
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert routes == documented


def test_background_sync_runs_when_due_and_never_blocks_the_caller(server, tmp_path):
    _srv, _sdb, token, running = server
    edge = h.make_edge(tmp_path / "edge", running.url, token)
    release = threading.Event()

    def slow(settings):
        release.wait(30)
        return client.sync_once(settings)

    background = client.BackgroundSync(edge, run=slow)
    started = time.monotonic()
    status = background.tick()
    assert status.running and time.monotonic() - started < 0.5
    assert background.tick().running  # a second tick does not start a second sync
    release.set()
    deadline = time.monotonic() + 30
    while background.status().running and time.monotonic() < deadline:
        time.sleep(0.05)
    status = background.status()
    assert status.last.switched and status.error is None
    assert status.next_in_s > edge.sync.interval_minutes * 60 - 5
    assert background.take_content_changed() and not background.take_content_changed()


def test_background_sync_backs_off_after_failures():
    now = [0.0]
    settings = h.settings_for(h.REPO / "no-such-data", server="http://127.0.0.1:9",
                              retry_minutes=1.0, max_backoff_minutes=8.0)
    done = threading.Event()

    def failing(_):
        done.set()
        raise SyncError("No se pudo hablar con el servidor")

    background = client.BackgroundSync(settings, run=failing, clock=lambda: now[0])
    waits = []
    for _ in range(6):
        done.clear()
        background.tick()
        done.wait(5)
        while background.status().running:
            time.sleep(0.01)
        status = background.status()
        waits.append(status.next_in_s)
        now[0] += status.next_in_s
    assert status.error.startswith("No se pudo") and status.failures == 6
    limits = [60, 120, 240, 480, 480, 480]
    assert all(0.8 * lim <= w <= lim for w, lim in zip(waits, limits, strict=True))
