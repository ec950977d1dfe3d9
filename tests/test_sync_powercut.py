"""Pulling the plug: kill -9 an edge's sync and its content switch at many points, then check it.

After every kill the edge's database must pass ``PRAGMA integrity_check``, its content must be one
published version entirely (rows and files), and in the end the server must hold every event of
the edge exactly once. kill -9 stops the process, not the disk: what the kernel had accepted is
kept, so this checks the order of writes and renames, not the SD card's own cache.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from audio_lessons import catalog, outbox, packs, stats, sync
from tests import sync_helpers as h
from tests.conftest import REPO

pytestmark = pytest.mark.slow
ROUNDS = 24


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return h.template(tmp_path_factory, "powercut", lessons=4, seconds=3.0, spare=2)


@pytest.fixture
def server(tmp_path, template):
    folder = h.copy_of(template, tmp_path)
    settings = h.settings_for(folder)
    db = sync.connect(settings.db_path)
    return settings, db


def _sync_child(edge_dir, url, token) -> subprocess.Popen:
    code = ("import sys; from kiosk.sync import sync_once; from tests.sync_helpers import "
            "settings_for; from pathlib import Path; "
            "sync_once(settings_for(Path(sys.argv[1]), server=sys.argv[2], batch=300))")
    return subprocess.Popen([sys.executable, "-c", code, str(edge_dir), url], cwd=REPO,
                            stderr=subprocess.DEVNULL)


def _swap(db, round_no: int, spares: list[str], originals: list[str]) -> None:
    """A leader's change: lesson 1 or 2 gets another recording, lesson 4 goes in and out."""
    lesson = catalog.get_lesson(db, f"leccion-{1 + round_no % 2}")
    pool = spares + originals
    current = lesson.recordings["es"].media
    choice = pool[(pool.index(current) + 1) % len(pool)] if current in pool else spares[0]
    catalog.set_recording(db, lesson.id, "es", choice)
    four = catalog.get_lesson(db, "leccion-4")
    catalog.update_lesson(db, four.id, published=not four.published)


def test_kill_9_during_syncs_leaves_a_whole_kiosk_and_loses_no_event(server, tmp_path):
    srv, sdb = server
    token = h.add_edge(sdb, "sala-1")
    waitress = h.WaitressProcess(srv.data_dir)
    link = h.CuttingProxy(waitress.port, rate=400_000)  # a slow rural link
    edge = h.make_edge(tmp_path / "edge", link.url, token)
    edb = sync.connect(edge.db_path)
    manifests = {None: None}
    originals = [catalog.get_lesson(sdb, f"leccion-{n}").recordings["es"].media for n in (1, 2)]
    spares = h.spares(sdb)
    rng = random.Random(8)
    ids: list[str] = []
    kills = 0
    try:
        for round_no in range(ROUNDS):
            if round_no % 3 == 1:
                _swap(sdb, round_no, spares, originals)
            published = sync.build_manifest(sdb, srv.media_dir)
            manifests[published.version] = published
            ids += h.write_events(edb, 400, start=round_no * 400)
            if round_no % 4 == 0:
                h.write_message(edb, edge, seconds=0.5)
            child = _sync_child(edge.data_dir, link.url, token)
            time.sleep(rng.uniform(0.1, 1.5))  # most syncs of a round take longer: cut mid-way
            if round_no % 6 == 5:  # this time the server loses power mid-sync, and comes back
                waitress.kill()
                waitress = h.WaitressProcess(srv.data_dir)
                link.target = waitress.port
                child.wait(60)  # the kiosk retries; it may finish or give up for now
                assert sdb.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            elif child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
            child.wait(30)
            h.check_edge(edge, manifests)
        final = _sync_child(edge.data_dir, link.url, token)
        assert final.wait(120) == 0
    finally:
        link.stop()
        waitress.stop()
    assert kills >= ROUNDS // 3, f"only {kills} of {ROUNDS} syncs were cut: kill earlier"
    assert h.check_edge(edge, manifests) == published.version
    held = [r[0] for r in sdb.execute("SELECT id FROM listen_events UNION ALL "
                                      "SELECT id FROM nav_events")]
    assert len(held) == len(ids) and set(held) == set(ids)  # none lost, none twice
    assert stats.totals(sdb).listens == len(ids) // 2  # the rollups counted each listen once
    assert sdb.execute("SELECT count(*) FROM messages").fetchone()[0] == ROUNDS // 4
    assert outbox.pending_counts(edb) == {"listens": 0, "navs": 0, "messages": 0}


def _import_killed(kill_at: int, edge_dir, pack) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.sync_helpers", "import-killed",
                           str(kill_at), str(edge_dir), str(pack)], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_kill_9_at_every_step_of_a_content_switch(server, tmp_path):
    srv, sdb = server
    edge = h.make_edge(tmp_path / "edge")
    old_pack, new_pack = tmp_path / "old.tar", tmp_path / "new.tar"
    old = packs.export_content(sdb, srv.media_dir, old_pack)
    manifests = {None: None, old.version: sync.build_manifest(sdb, srv.media_dir)}
    edb = sync.connect(edge.db_path)
    packs.import_content(edb, edge.data_dir, edge.media_dir, old_pack, ["kiosk"], None)
    _swap(sdb, 0, h.spares(sdb), [])
    catalog.set_recording(sdb, catalog.get_lesson(sdb, "leccion-2").id, "es", h.spares(sdb)[0])
    catalog.update_lesson(sdb, catalog.get_lesson(sdb, "leccion-3").id, title="lección nueva")
    new = packs.export_content(sdb, srv.media_dir, new_pack)
    manifests[new.version] = sync.build_manifest(sdb, srv.media_dir)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(edge.data_dir, snapshot)

    shutil.copytree(snapshot, tmp_path / "dry")
    dry = _import_killed(0, tmp_path / "dry", new_pack)  # not killed: how many lines it runs
    assert dry.returncode == 0, dry.stderr
    lines = int(dry.stdout)  # varies by a few lines from run to run (set and folder order)
    points = range(1, lines, max(1, lines // 40))
    seen, killed_count = set(), 0
    for kill_at in points:
        shutil.rmtree(edge.data_dir)
        shutil.copytree(snapshot, edge.data_dir)
        killed = _import_killed(kill_at, edge.data_dir, new_pack)
        assert killed.returncode in (-signal.SIGKILL, 0), killed.stderr
        killed_count += killed.returncode == -signal.SIGKILL
        seen.add(h.check_edge(edge, manifests))
        again = _import_killed(0, edge.data_dir, new_pack)  # the next boot imports it again
        assert again.returncode == 0, again.stderr
        assert h.check_edge(edge, manifests) == new.version
    assert killed_count >= 0.9 * len(points)
    assert seen == {old.version, new.version}  # some kills landed before the commit, some after
