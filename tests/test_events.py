"""Listen and navigation events, and the listeners they belong to (real SQLite files)."""

from __future__ import annotations

import os
import stat

import pytest

from audio_lessons import events, listeners, store
from audio_lessons.errors import CatalogError, ConfigError
from audio_lessons.events import ListenEvent, NavEvent


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "pallay.db"


@pytest.fixture
def db(db_path):
    db = store.connect(db_path)
    yield db
    db.conn.close()


def listen(furthest_ms=60_000, duration_ms=120_000, *, id=None, channel="kiosk",
           device="kiosko-1", listener="abc", lesson_id=1, input_method="button",
           started_at="2026-05-01T15:00:00Z") -> ListenEvent:
    return ListenEvent(id or events.new_id(), channel, device, listener, lesson_id, "qu",
                       input_method, started_at, furthest_ms / 1000, furthest_ms, duration_ms)


def nav(step="welcome", session="s1", *, detail="", listener="abc") -> NavEvent:
    return NavEvent(events.new_id(), session, "phone", "nodo-1", listener, step, detail,
                    "2026-05-01T15:00:00Z")


# --- events -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("furthest, duration, quartile", [
    (0, 120_000, 0), (29_999, 120_000, 0), (30_000, 120_000, 1), (59_999, 120_000, 1),
    (60_000, 120_000, 2), (90_000, 120_000, 3), (117_999, 120_000, 3),
    (118_000, 120_000, 4),  # the last 2 s count as the end
    (120_000, 120_000, 4), (125_000, 120_000, 4), (5_000, 0, 0),
    (9_000, 10_000, 4), (8_999, 10_000, 3),  # a 10 s clip: only its last second is "the end"
])
def test_quartile_reached(furthest, duration, quartile):
    event = listen(furthest, duration)
    assert event.quartile == quartile
    assert event.completed is (quartile == 4)


def test_events_reject_unknown_channel_step_and_timestamp():
    with pytest.raises(ValueError, match="channel"):
        listen(channel="radio")
    with pytest.raises(ValueError, match="input_method"):
        listen(input_method="telepathy")
    with pytest.raises(ValueError, match="started_at"):
        listen(started_at="01/05/2026 15:00")
    with pytest.raises(ValueError, match="before 2000"):
        listen(started_at="1970-01-01T00:00:10Z")
    with pytest.raises(ValueError, match="step"):
        nav(step="dance")


def test_record_listen_stores_derived_quartile_and_is_idempotent(db):
    event = listen(100_000, 120_000)
    assert events.record_listen(db, event) is True
    assert events.record_listen(db, event) is False  # a kiosk resending after a power cut
    rows = list(db.query("SELECT * FROM listen_events"))
    assert len(rows) == 1
    assert rows[0]["id"] == event.id and rows[0]["quartile"] == 3 and rows[0]["completed"] == 0
    assert rows[0]["furthest_ms"] == 100_000 and rows[0]["device"] == "kiosko-1"
    # and the statistics count it once
    assert db.execute("SELECT sum(listens) FROM stats_lesson_day").fetchone()[0] == 1


def test_record_nav_is_idempotent(db):
    event = nav("menu", detail="main")
    assert events.record_nav(db, event) is True
    assert events.record_nav(db, event) is False
    assert [tuple(r) for r in db.execute("SELECT id, step, detail FROM nav_events")] == [
        (event.id, "menu", "main")]


def test_record_many_in_one_transaction_counts_only_new_events(db):
    listens = [listen(i * 1000) for i in range(50)]
    navs = [nav("welcome", session=f"s{i}") for i in range(30)]
    assert events.record_many(db, listens[:20], navs[:10]) == (20, 10)
    assert events.record_many(db, listens, navs) == (30, 20)  # the resent half is skipped
    assert events.record_many(db, listens, navs) == (0, 0)
    assert db.execute("SELECT count(*) FROM listen_events").fetchone()[0] == 50
    assert db.execute("SELECT count(*) FROM nav_events").fetchone()[0] == 30


def test_record_many_rolls_back_the_whole_batch_on_error(db):
    batch = [listen(), listen(), listen(id="bad")]
    with store.write(db):
        db.execute("CREATE TRIGGER reject BEFORE INSERT ON listen_events WHEN NEW.id = 'bad' "
                   "BEGIN SELECT RAISE(ABORT, 'rejected'); END")
    with pytest.raises(Exception, match="rejected"):
        events.record_many(db, batch, [nav()])
    assert db.execute("SELECT count(*) FROM listen_events").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM nav_events").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM stats_lesson_day").fetchone()[0] == 0


# --- listeners --------------------------------------------------------------------------------------

def test_secret_is_created_once_private_and_reused(tmp_path):
    path = tmp_path / "data" / "secret.key"
    secret = listeners.load_or_create_secret(path)
    assert len(secret) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert listeners.load_or_create_secret(path) == secret
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left behind
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match="debe tener 32 bytes"):
        listeners.load_or_create_secret(path)


def test_pseudonyms_are_stable_keyed_and_normalised(tmp_path):
    secret = listeners.load_or_create_secret(tmp_path / "a.key")
    other = listeners.load_or_create_secret(tmp_path / "b.key")
    assert secret != other
    one = listeners.pseudonym(secret, "987654321")
    assert len(one) == 32 and int(one, 16) >= 0
    assert listeners.pseudonym(secret, "+51 987 654 321") == one
    assert listeners.pseudonym(secret, "0051987654321") == one
    assert listeners.pseudonym(secret, "51987654321") == one
    assert listeners.pseudonym(secret, "987654322") != one
    assert listeners.pseudonym(other, "987654321") != one
    with pytest.raises(ValueError):
        listeners.pseudonym(secret, "anonymous")


def test_raw_number_never_reaches_the_database_file(tmp_path, db_path, db):
    secret = listeners.load_or_create_secret(tmp_path / "secret.key")
    number = "+51 987 654 321"
    who = listeners.pseudonym(secret, number)
    listeners.remember(db, who, language="qu")
    listeners.save_progress(db, who, 1, "qu", 42_000)
    events.record_listen(db, listen(listener=who))
    events.record_nav(db, nav(listener=who))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("pallay"))
    assert who.encode() in stored  # the check can see what it looks for
    for form in ("987654321", "51987654321", "+51 987 654 321", "987 654 321"):
        assert form.encode() not in stored
        assert form.encode("utf-16-le") not in stored
    assert secret not in stored


def test_remember_language_and_alerts(db):
    assert listeners.language_of(db, "ana") is None
    listeners.remember(db, "ana")
    assert listeners.language_of(db, "ana") is None
    listeners.remember(db, "ana", language="qu")
    listeners.remember(db, "ana")  # a later call without a choice keeps the language
    assert listeners.language_of(db, "ana") == "qu"
    with pytest.raises(CatalogError, match="no está configurado"):
        listeners.remember(db, "ana", language="xx")
    first_seen = db.execute("SELECT first_seen FROM listeners WHERE id = 'ana'").fetchone()[0]
    assert first_seen.endswith("Z")
    assert not listeners.alerts_on(db, "ana")
    listeners.set_alerts(db, "ana", True)
    assert listeners.alerts_on(db, "ana") and listeners.language_of(db, "ana") == "qu"
    listeners.set_alerts(db, "ana", False)
    assert not listeners.alerts_on(db, "ana")


def test_progress_saved_replaced_and_cleared(db):
    assert listeners.progress(db, "ana") == {}
    listeners.save_progress(db, "ana", 1, "qu", 30_000)
    listeners.save_progress(db, "ana", 2, "es", 5_000)
    listeners.save_progress(db, "ana", 1, "qu", 61_500)
    listeners.save_progress(db, "rosa", 1, "es", 1_000)
    assert listeners.progress(db, "ana") == {1: 61_500, 2: 5_000}
    listeners.clear_progress(db, "ana", 1)
    assert listeners.progress(db, "ana") == {2: 5_000}
    assert listeners.progress(db, "rosa") == {1: 1_000}
