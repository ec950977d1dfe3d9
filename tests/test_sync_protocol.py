"""The sync's rules, fast: tokens, manifests, acknowledgements, bad input (real SQLite files)."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import subprocess
import sys

import pytest

from audio_lessons import catalog, edges, events, outbox, store, sync
from audio_lessons.errors import SyncError
from tests import sync_helpers as h
from tests.conftest import REPO


def fake_media(db, settings, n: int) -> str:
    """A media row and its two variant files (bytes, not audio: the sync never decodes)."""
    digest = hashlib.sha256(f"media {n}".encode()).hexdigest()[:32]
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    for variant in ("phone", "kiosk"):
        (settings.media_dir / f"{digest}.{variant}.wav").write_bytes(f"{variant} {n}".encode() * 99)
    with store.write(db):
        db["media"].insert({"hash": digest, "duration_ms": 60_000, "original_ext": "wav",
                            "created_at": store.now()})
    return digest


@pytest.fixture
def central(tmp_path):
    settings = h.settings_for(tmp_path / "server")
    db = sync.connect(settings.db_path)
    for n in (1, 2):
        catalog.add_lesson(db, slug=f"l{n}", title=f"lección {n}")
        catalog.set_recording(db, n, "es", fake_media(db, settings, n))
    return settings, db


def test_only_a_hash_of_the_token_is_kept_and_only_the_token_opens(central):
    _, db = central
    _, token = edges.add(db, "sala-1")
    stored = db.execute("SELECT token_hash FROM devices WHERE id = 'sala-1'").fetchone()[0]
    assert token not in stored and stored == hashlib.sha256(token.encode()).hexdigest()
    assert edges.authenticate(db, token).name == "sala-1"
    assert edges.authenticate(db, token[:-1] + "x") is None and edges.authenticate(db, "") is None
    with pytest.raises(SyncError, match="Ya existe"):
        edges.add(db, "sala-1")
    edges.revoke(db, "sala-1")
    assert edges.authenticate(db, token) is None


def test_a_manifest_that_changed_on_the_way_is_refused(central):
    settings, db = central
    good = sync.build_manifest(db, settings.media_dir).to_dict()
    assert sync.Manifest.from_dict(copy.deepcopy(good)).version == good["version"]
    tampered = copy.deepcopy(good)
    tampered["tables"]["lessons"]["rows"][0][2] = "otra lección"
    escaping = copy.deepcopy(good)
    escaping["files"][0]["name"] = "../../pallay.db"
    newer = {**copy.deepcopy(good), "format": 2}
    for bad in (tampered, escaping, {"format": 1}, "nada"):
        with pytest.raises(SyncError, match="dañado"):
            sync.Manifest.from_dict(bad)
    with pytest.raises(SyncError, match="actualice pallay"):
        sync.Manifest.from_dict(newer)
    with pytest.raises(SyncError, match="variants"):  # a typo must not switch to no audio
        sync.Manifest.from_dict(good).wanted(["kisok"])


def test_the_manifest_holds_published_lessons_only_and_its_version_follows_content(central):
    settings, db = central
    first = sync.build_manifest(db, settings.media_dir)
    assert sync.build_manifest(db, settings.media_dir).version == first.version
    catalog.update_lesson(db, 2, published=False)
    second = sync.build_manifest(db, settings.media_dir)
    assert [r[0] for r in second.tables["lessons"]["rows"]] == [1]
    assert len(second.files) == 2 and second.version != first.version


def test_events_the_core_refuses_are_kept_aside_acknowledged_and_signed_by_the_edge(central):
    _, db = central
    listen = {"id": events.new_id(), "channel": "kiosk", "device": "sala-9", "listener": None,
              "lesson_id": 1, "language": "es", "input_method": "button",
              "started_at": "2026-03-01T10:00:00Z", "seconds_heard": 3.0, "furthest_ms": 3000,
              "duration_ms": 60_000}
    broken = {**listen, "id": events.new_id(), "started_at": "1970-01-01T00:00:00Z"}
    ack = outbox.import_batch(db, "sala-1", {"listens": [listen, broken], "navs": []})
    assert set(ack.acked["listens"]) == {listen["id"], broken["id"]}
    assert ack.new["listens"] == 1 and ack.rejected["listens"] == 1
    assert db.execute("SELECT device FROM listen_events").fetchall() == [("sala-1",)]
    [(kept, reason)] = db.execute("SELECT row, reason FROM sync_rejected").fetchall()
    assert json.loads(kept)["id"] == broken["id"] and "2000" in reason
    again = outbox.import_batch(db, "sala-1", {"listens": [listen, broken]})
    assert again.new["listens"] == 0 and len(again.acked["listens"]) == 2


def test_the_cursor_moves_only_over_acknowledged_events(tmp_path):
    db = sync.connect(tmp_path / "edge.db")
    ids = h.write_events(db, 10)
    batch = outbox.pending(db, 100)
    listens = ids[:10]
    assert outbox.mark_sent(db, batch, {"listens": listens[:4] + listens[5:], "navs": []}) == 4
    assert outbox.pending_counts(db)["listens"] == 6 and outbox.pending_counts(db)["navs"] == 10
    assert [row["id"] for _, row in outbox.pending(db, 100).rows["listens"]] == listens[4:]


@pytest.fixture
def api(central):
    settings, db = central
    token = h.add_edge(db, "sala-1")
    app = h.app_for(settings)
    app.testing = True
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def test_bad_requests_get_clear_json_answers(api):
    http, auth = api
    assert http.post("/api/sync/v1/events", data=b"no es json", headers=auth).status_code == 422
    answer = http.post("/api/sync/v1/events", data=b"[1, 2]", headers=auth)
    assert answer.status_code == 422 and "lote" in answer.get_json()["message"]
    bomb = gzip.compress(b" " * (70 * 1024 * 1024))
    big = http.post("/api/sync/v1/events", data=bomb, headers={**auth, "Content-Encoding": "gzip"})
    assert big.status_code == 413
    for name in ("..%2Fpallay.db", "0" * 32 + ".kiosk.wav", "x.kiosk.wav"):
        assert http.get(f"/api/sync/v1/files/{name}", headers=auth).status_code == 404
    put = http.put(f"/api/sync/v1/messages/{events.new_id()}?channel=kiosk&language=qu&ext=wav"
                   "&created_at=2026-03-01T10:00:00Z", data=b"RIFF....",
                   headers={**auth, "Content-Digest": "sha-256=:AAAA:"})
    assert put.status_code == 422 and "incompleto" in put.get_json()["message"]


def test_an_unchanged_manifest_is_answered_304(api):
    http, auth = api
    first = http.get("/api/sync/v1/manifest", headers=auth)
    assert first.status_code == 200 and first.headers["Pallay-Edge"] == "sala-1"
    again = http.get("/api/sync/v1/manifest", headers={**auth, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data


def test_the_core_sync_modules_do_not_import_flask():
    code = ("import sys, audio_lessons.sync, audio_lessons.outbox, audio_lessons.packs, "
            "audio_lessons.edges, audio_lessons.sync_commands; "
            "assert 'flask' not in sys.modules, 'flask imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
