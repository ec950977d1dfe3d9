"""A kiosk session on real PortAudio (ALSA's file plugin, paced like a DAC) and a real store."""

import numpy as np
import pytest

from audio_lessons import actions as a
from audio_lessons import catalog, store
from tests.kiosk_harness import Running, clip, data, library, sound_card  # noqa: F401


@pytest.fixture
def kiosk(data, sound_card):
    running = Running(data)
    yield running
    running.close()


def lesson_media(data, slug):
    db = store.connect(data / "pallay.db")
    return catalog.get_lesson(db, slug).recordings["es"].media


def test_a_lesson_chosen_with_buttons_comes_out_of_the_speaker_and_is_logged(kiosk, data,
                                                                              sound_card):
    start = sound_card.position
    kiosk.press("5")  # any button wakes the kiosk
    kiosk.asked("language")
    kiosk.press("1")  # Spanish
    kiosk.asked("menu")
    kiosk.press("2")  # the lesson on dust
    played = kiosk.wait(lambda x: isinstance(x, a.PlayLesson))
    assert played.media == lesson_media(data, "polvo")
    lesson = clip(data, played.media)
    sound_card.speaker.wait_for(lesson, since=start)  # every sample, in order, at volume 1
    kiosk.asked("group_count")
    kiosk.press("3")  # three women listened together
    kiosk.asked("lesson_end")
    kiosk.press("*")  # back to idle
    kiosk.wait(lambda x: isinstance(x, a.HangUp) or x == a.HangUp())
    kiosk.close()
    db = store.connect(data / "pallay.db")
    [listen] = db["listen_events"].rows
    assert (listen["channel"], listen["device"], listen["input_method"]) == (
        "kiosk", "kiosk-test", "button")
    assert listen["completed"] == 1 and listen["people"] == 3 and listen["listener"] is None
    steps = [r["step"] for r in db.query("SELECT step FROM nav_events ORDER BY rowid")]
    assert steps[:3] == ["welcome", "language", "menu"] and steps[-1] == "hangup"
    assert {r["channel"] for r in db.query("SELECT channel FROM nav_events")} == {"kiosk"}
