"""The kiosk controller: invitations, quiet hours, volume, the watchdog, a broken lesson."""

import datetime as dt
import socket

import numpy as np
import pytest

from audio_lessons import actions as a
from audio_lessons import catalog, config, media, store
from audio_lessons.errors import ConfigError
from kiosk import wiring
from kiosk.attract import Attract, is_quiet, parse_hours
from kiosk.watchdog import Notifier
from tests.kiosk_harness import KIOSK_ENV, Running, clip

LIMA = dt.timezone(dt.timedelta(hours=-5))


@pytest.mark.parametrize("hours, at, quiet", [
    ("21:00-07:00", "22:30", True), ("21:00-07:00", "06:59", True), ("21:00-07:00", "07:00", False),
    ("21:00-07:00", "12:00", False), ("12:00-14:00", "13:00", True), ("", "03:00", False),
])
def test_quiet_hours_may_run_past_midnight(hours, at, quiet):
    assert is_quiet(parse_hours(hours), dt.time.fromisoformat(at)) is quiet


def test_bad_quiet_hours_or_time_zone_are_one_clear_message():
    with pytest.raises(ConfigError, match="quiet_hours"):
        parse_hours("9pm-7am")
    settings = config.load("x", environ={"PALLAY_KIOSK_TIMEZONE": "Mars/Olympus"})
    with pytest.raises(ConfigError, match="timezone"):
        Attract.from_settings(settings.kiosk)


def test_invitations_follow_lima_time_whatever_the_clock_zone():
    attract = Attract.from_settings(config.Settings().kiosk)
    assert attract.allowed(dt.datetime(2026, 11, 24, 10, 0, tzinfo=LIMA))
    assert not attract.allowed(dt.datetime(2026, 11, 25, 3, 30, tzinfo=dt.UTC))  # 22:30 in Lima


def test_an_idle_kiosk_invites_passers_by(kiosk_data, sound_card):
    db = store.connect(kiosk_data / "pallay.db")
    invitation = clip(kiosk_data, catalog.view(db).prompts[("attract", "es")])
    start = sound_card.position
    kiosk = Running(kiosk_data, env={"PALLAY_KIOSK_ATTRACT_MINUTES": "0.02",
                               "PALLAY_KIOSK_QUIET_HOURS": ""})
    try:
        sound_card.speaker.wait_for(invitation, since=start, timeout=20)
    finally:
        kiosk.close()


def test_no_invitation_in_the_quiet_hours(kiosk_data, sound_card):
    settings = config.load(kiosk_data, environ={**KIOSK_ENV, "PALLAY_KIOSK_ATTRACT_MINUTES": "1"})
    box = wiring.build(settings, keys=())
    try:
        box.kiosk.clock = lambda: dt.datetime(2026, 11, 24, 23, 0, tzinfo=LIMA)
        assert box.kiosk._invite(Attract.from_settings(settings.kiosk)) is False
        assert box.kiosk.media.player.first_sample_at is None  # nothing was played
    finally:
        box.close()


def test_the_volume_keys_scale_what_comes_out_and_are_remembered(kiosk_data, sound_card):
    kiosk = Running(kiosk_data)
    try:
        kiosk.press("vol-", "vol-")
        kiosk.press("5")
        kiosk.asked("language:es")
        kiosk.press("1")
        kiosk.asked("menu")
        start = sound_card.position
        kiosk.press("1")
        played = kiosk.wait(lambda x: isinstance(x, a.PlayLesson))
        quieter = np.zeros(len(clip(kiosk_data, played.media)), np.int16)
        np.multiply(clip(kiosk_data, played.media), 0.8, out=quieter, casting="unsafe")
        sound_card.speaker.wait_for(quieter, since=start)
    finally:
        kiosk.close()
    assert (kiosk_data / "kiosk-volume").read_text().strip() == "0.8"
    again = Running(kiosk_data)  # after a restart (or a power cut) the volume is the same
    try:
        assert again.kiosk.media.player.volume == 0.8
    finally:
        again.close()


def test_the_controller_tells_systemd_it_is_ready_and_alive(kiosk_data, sound_card, tmp_path):
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"})
        assert notifier.interval_s == 0.1
        settings = config.load(kiosk_data, environ=KIOSK_ENV)
        box = wiring.build(settings, keys=(), notifier=notifier)
        import threading

        thread = threading.Thread(target=box.kiosk.run, daemon=True)
        thread.start()
        messages = [sock.recv(100).decode() for _ in range(4)]
        box.kiosk.stop()
        thread.join(5)
        box.close()
        while (message := sock.recv(100).decode()) != "STOPPING=1":
            messages.append(message)
    assert messages[:2] == ["READY=1", "STATUS=idle"]
    assert messages.count("WATCHDOG=1") >= 2


def test_a_missing_lesson_file_says_sorry_and_the_kiosk_carries_on(kiosk_data, sound_card):
    db = store.connect(kiosk_data / "pallay.db")
    hash_ = catalog.get_lesson(db, "polvo").recordings["es"].media
    sorry = clip(kiosk_data, catalog.view(db).prompts[("sorry", "es")])
    media.variant_path(kiosk_data / "media", hash_, "kiosk").unlink()  # a sync half done, a bad card
    kiosk = Running(kiosk_data)
    try:
        kiosk.press("5")
        kiosk.asked("language:es")
        kiosk.press("1")
        kiosk.asked("menu")
        start = sound_card.position
        kiosk.press("2")
        sound_card.speaker.wait_for(sorry, since=start)
        kiosk.until(lambda: not kiosk.kiosk.in_session)
        mark = kiosk.mark()
        kiosk.press("5")  # the next group is served as usual
        kiosk.asked("language:es", since=mark)
    finally:
        kiosk.close()
    assert kiosk.kiosk.sessions == 2
