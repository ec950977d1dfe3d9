"""Group listening in the engine (asked only when the front end says so) and in the statistics."""

from dataclasses import replace

from audio_lessons import actions as a
from audio_lessons import events, stats, store
from audio_lessons.menu import Caller
from tests.test_menu import MENU_ASK, MINUTE, STARTER, render, run_table

VIEW = replace(STARTER, prompts={**STARTER.prompts, ("group_count", "es"): "h-group_count"})
KIOSK = Caller(language="es", ask_group=True)
LESSON_END = "ask:lesson_end[1840]"
HEARD_ALL = f"listen:1:{2 * MINUTE}/{2 * MINUTE}:button:heard={2 * MINUTE}"


def people(action):
    """render(), plus the group count of a listen."""
    if isinstance(action, a.LogListen):
        return f"{render(action)}:people={action.people}"
    return render(action)


def table(rows, caller=KIOSK):
    import tests.test_menu as tm

    plain, tm.render = tm.render, people
    try:
        return run_table(rows, caller=caller, view=VIEW)
    finally:
        tm.render = plain


START = [
    (None, ["nav:welcome", "nav:menu", "ask:welcome+menu+message_option+language_option[123089]"]),
    (a.Key("1", via="button"), ["nav:lesson_start", "say:keys_help", "play:1:es@0"]),
]


def test_after_a_lesson_heard_to_the_end_the_kiosk_asks_how_many_listened():
    table([*START,
        (a.PlaybackEnded(2 * MINUTE), ["nav:lesson_75", "nav:lesson_end", "clear:1",
                                       "ask:group_count[123456789]"]),
        (a.Key("4", via="button"),
         [HEARD_ALL + ":people=4", LESSON_END]),
    ])


def test_silence_logs_the_listen_without_a_count_and_goes_on():
    table([*START,
        (a.PlaybackEnded(2 * MINUTE), ["nav:lesson_75", "nav:lesson_end", "clear:1",
                                       "ask:group_count[123456789]"]),
        (a.Silence(), [HEARD_ALL + ":people=None",
                       LESSON_END]),
    ])


def test_a_wrong_key_asks_again_and_a_spoken_digit_counts():
    table([
        (None, ["nav:welcome", "nav:menu",
                "ask:welcome+menu+message_option+language_option+voice_hint[123089]"]),
        START[1],
        (a.PlaybackEnded(2 * MINUTE), ["nav:lesson_75", "nav:lesson_end", "clear:1",
                                       "ask:group_count[123456789]"]),
        (a.Key("0"), ["ask:invalid+group_count[123456789]"]),
        (a.Word("siete", 0.9), [HEARD_ALL + ":people=7", LESSON_END]),
    ], caller=Caller(language="es", ask_group=True, voice=True))


def test_leaving_during_the_question_still_logs_the_listen_once():
    table([*START,
        (a.PlaybackEnded(2 * MINUTE), ["nav:lesson_75", "nav:lesson_end", "clear:1",
                                       "ask:group_count[123456789]"]),
        (a.HangUp(), [HEARD_ALL + ":people=None",
                      "nav:hangup", "end"]),
    ])


def test_a_lesson_left_early_or_on_the_phone_is_never_asked():
    table([*START,
        (a.Key("0", position_ms=30_000), [f"listen:1:30000/{2 * MINUTE}:button:heard=30000:people=None",
                                          "save:1@30000", "nav:menu", MENU_ASK]),
    ])
    table([*START,
        (a.PlaybackEnded(2 * MINUTE), [HEARD_ALL + ":people=None", "nav:lesson_75",
                                       "nav:lesson_end", "clear:1", LESSON_END]),
    ], caller=Caller(language="es"))


def listen(people, channel="kiosk", device="kiosk-sala"):
    return events.ListenEvent(events.new_id(), channel, device, None, 1, "es", "button",
                              "2026-11-24T15:00:00Z", 120.0, 2 * MINUTE, 2 * MINUTE, people)


def test_statistics_count_people_reached_at_kiosks_not_only_listens(tmp_path):
    db = store.connect(tmp_path / "pallay.db")
    for count in (5, None, 3):
        events.record_listen(db, listen(count))
    events.record_listen(db, listen(None, channel="phone", device="line-1"))
    assert stats.people(db) == {"kiosk": 9, "phone": 1}
    assert stats.people(db, channel="kiosk", since="2026-11-25") == {}
    summary = stats.summary(db)
    assert summary.people["kiosk"] == 9 and summary.by_channel["kiosk"].listens == 3
    assert "kiosco                      3 escuchas, 9 personas" in stats.render(summary)
    before = db.execute("SELECT * FROM stats_people_day ORDER BY channel").fetchall()
    stats.rebuild(db)
    assert db.execute("SELECT * FROM stats_people_day ORDER BY channel").fetchall() == before
    [row] = db.query("SELECT people FROM listen_events WHERE people = 5")
    assert row == {"people": 5}
