"""The menu engine, tested once for phone and kiosk as tables of events and expected actions.

Each row is (event fed in, actions expected back), actions written in the short form of ``render``.
"""

from dataclasses import replace

import pytest

from audio_lessons import actions as a
from audio_lessons.catalog import CatalogView, Lesson, Menu, Recording
from audio_lessons.config import Settings
from audio_lessons.menu import Caller, MenuEngine

MINUTE = 60_000
PROMPTS = ("welcome", "language:es", "language:qu", "first_lesson", "menu", "para", "marque", "message_option", "language_option",
           "invalid", "not_understood", "no_input", "auto_play", "resume", "keys_help", "paused",
           "lesson_end", "no_more", "record_intro", "record_review", "record_saved",
           "record_empty", "goodbye", "confirm_menu", "voice_hint", "alerts_offer", "alerts_on",
           "did_you_mean", "yes_no", "sorry",
           *(f"digit:{d}" for d in range(10)))


def lesson(id_, key, slug, keywords=(), menu="main", duration=2 * MINUTE, languages=("es",)):
    recordings = {lang: Recording(lang, f"{slug}-{lang}", duration, "", True) for lang in languages}
    return Lesson(id_, slug, slug, slug, menu, key, tuple(keywords), id_, True, recordings)


def catalog(*lessons, menus=(), qu_prompts=("welcome",)):
    prompts = {(name, "es"): f"h-{name}" for name in PROMPTS}
    prompts.update({(name, "qu"): f"hq-{name}" for name in qu_prompts})
    for le in lessons:
        prompts[(f"title:{le.slug}", "es")] = f"h-title-{le.slug}"
    all_menus = {"main": Menu("main", "Menú", None, None)}
    all_menus.update({m.slug: m for m in menus})
    return CatalogView(all_menus, {le.id: le for le in lessons}, prompts)


STARTER = catalog(lesson(1, "1", "epp", ["equipo"]), lesson(2, "2", "terreno"),
                  lesson(3, "3", "polvo", ["polvo"], languages=("es", "qu")))


def render(action):
    """A short, readable form of an action for the tables."""
    match action:
        case a.Say(prompts):
            return "say:" + "+".join(p.name for p in prompts)
        case a.Ask(prompts, keys, _, _):
            names = [p.name for p in prompts
                     if p.name not in ("para", "marque")
                     and not p.name.startswith(("title:", "digit:")) or p.name.startswith("title:menu")]
            return f"ask:{'+'.join(names)}[{keys}]"
        case a.PlayLesson(lesson_id, language, _, offset, _):
            return f"play:{lesson_id}:{language}@{offset}"
        case a.Pause():
            return "pause"
        case a.Record():
            return "record"
        case a.PlayMessage():
            return "playmsg"
        case a.End():
            return "end"
        case a.LogNav(step, _):
            return f"nav:{step}"
        case a.LogListen(lesson_id, _, via, furthest, duration, heard):
            return f"listen:{lesson_id}:{furthest}/{duration}:{via}:heard={heard}"
        case a.SaveProgress(lesson_id, _, position):
            return f"save:{lesson_id}@{position}"
        case a.ClearProgress(lesson_id):
            return f"clear:{lesson_id}"
        case a.SetLanguage(language):
            return f"lang:{language}"
        case a.SetAlerts(on):
            return f"alerts:{'on' if on else 'off'}"
        case a.SaveMessage(path, _, language):
            return f"savemsg:{path}:{language}"
        case a.DiscardMessage(path):
            return f"discard:{path}"
    raise AssertionError(action)


MENU_ASK = "ask:menu+message_option+language_option[123089]"
WELCOME_MENU = "ask:welcome+menu+message_option+language_option[123089]"


def run_table(rows, caller=None, view=STARTER, settings=None):
    engine = MenuEngine(view, settings or Settings())
    state, actions = engine.start(caller or Caller(language="es"))
    first_event, expected = rows[0]
    assert first_event is None
    assert [render(x) for x in actions] == expected
    for event, expected in rows[1:]:
        state, actions = engine.handle(state, event)
        assert [render(x) for x in actions] == expected, f"after {event}"
    return state


def test_first_call_asks_language_then_plays_the_first_lesson_at_once():
    state = run_table([
        (None, ["nav:welcome", "nav:language", "ask:welcome+language:es+language:qu[12]"]),
        (a.Key("2"), ["lang:qu", "nav:lesson_start", "say:first_lesson", "play:1:es@0"]),
        (a.Key("0", position_ms=5_000), ["listen:1:5000/120000:auto:heard=5000", "save:1@5000",
                                         "nav:menu", MENU_ASK]),
        (a.Key("2"), ["nav:lesson_start", "say:keys_help", "play:2:es@0"]),  # keys told now
    ], caller=Caller(first_time=True))
    assert state.language == "qu"


def test_first_call_silence_assumes_spanish_and_plays_the_first_lesson():
    run_table([
        (None, ["nav:welcome", "nav:language", "ask:welcome+language:es+language:qu[12]"]),
        (a.Silence(), ["lang:es", "nav:lesson_start", "say:first_lesson", "play:1:es@0"]),
    ], caller=Caller(first_time=True))


def test_a_key_during_a_spoken_hint_acts_on_the_lesson_it_introduces():
    engine = MenuEngine(STARTER, Settings())
    state, _ = engine.start(Caller(first_time=True))
    state, actions = engine.handle(state, a.Key("1"))
    assert actions[-2].keys == actions[-1].keys  # the hint takes the lesson's keys
    state, actions = engine.handle(state, a.Key("0"))  # pressed during "first_lesson"
    assert [render(x) for x in actions] == ["listen:1:0/120000:auto:heard=0", "save:1@0",
                                           "nav:menu", MENU_ASK]


def test_the_first_lesson_at_once_can_be_turned_off():
    settings = Settings(menu=replace(Settings().menu, first_lesson_at_once=False))
    run_table([
        (None, ["nav:welcome", "nav:language", "ask:welcome+language:es+language:qu[12]"]),
        (a.Key("1"), ["lang:es", "nav:menu", MENU_ASK]),
    ], caller=Caller(first_time=True), settings=settings)


def test_a_returning_caller_is_not_given_the_first_lesson():
    run_table([
        (None, ["nav:welcome", "nav:language", "ask:welcome+language:es+language:qu[12]"]),
        (a.Key("1"), ["lang:es", "nav:menu", MENU_ASK]),
    ], caller=Caller())


def test_known_listener_goes_straight_to_menu_and_quechua_falls_back_to_spanish():
    engine = MenuEngine(STARTER, Settings())
    state, actions = engine.start(Caller(language="qu"))
    welcome, *menu_prompts = actions[-1].prompts  # the welcome opens the menu question
    assert (welcome.name, welcome.language) == ("welcome", "qu")
    assert {p.language for p in menu_prompts} == {"es"}  # no Quechua menu recorded yet
    state, actions = engine.handle(state, a.Key("3"))
    play = actions[-1]
    assert (play.lesson_id, play.language) == (3, "qu")  # the Quechua recording exists


def test_lesson_by_key_plays_to_the_end_and_is_logged_complete():
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("2"), ["nav:lesson_start", "say:keys_help", "play:2:es@0"]),
        (a.PlaybackEnded(2 * MINUTE), [f"listen:2:{2 * MINUTE}/{2 * MINUTE}:key:heard={2 * MINUTE}",
                                       "nav:lesson_75", "nav:lesson_end", "clear:2", "ask:lesson_end[1840]"]),
        (a.Key("1"), ["nav:lesson_start", "play:3:es@0"]),  # next lesson, keys explained once
    ])


def test_every_playback_key():
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("1"), ["nav:lesson_start", "say:keys_help", "play:1:es@0"]),
        (a.Key("9", position_ms=30_000), ["play:1:es@40000"]),  # forward 10 s
        (a.Key("7", position_ms=45_000), ["play:1:es@35000"]),  # back 10 s
        (a.Key("7", position_ms=36_000), ["play:1:es@26000"]),
        (a.Key("5", position_ms=50_000), ["save:1@50000", "pause"]),  # pause keeps the place
        (a.Key("5"), ["play:1:es@50000"]),  # resume
        (a.Key("8", position_ms=55_000), ["play:1:es@0"]),  # replay
        (a.Key("1", position_ms=5_000),  # next lesson: log this listen, keep its place
         ["listen:1:55000/120000:key:heard=70000", "save:1@5000",
          "nav:lesson_start", "play:2:es@0"]),
        (a.Key("4", position_ms=1_000),  # previous: lesson 1 was left at 5 s, too early to resume
         ["listen:2:1000/120000:key:heard=1000", "save:2@1000", "nav:lesson_start", "play:1:es@0"]),
        (a.Key("0", position_ms=3_000),
         ["listen:1:3000/120000:key:heard=3000", "save:1@3000", "nav:menu", MENU_ASK]),
    ])


def test_forward_past_the_end_finishes_the_lesson_without_completing_it():
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("1"), ["nav:lesson_start", "say:keys_help", "play:1:es@0"]),
        (a.Key("9", position_ms=115_000),
         ["listen:1:115000/120000:key:heard=115000", "nav:lesson_75", "save:1@115000",
          "ask:lesson_end[1840]"]),
    ])


def test_resume_where_she_stopped_on_a_later_call():
    caller = Caller(language="es", progress={2: 61_000})
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("2"), ["ask:resume[12]"]),
        (a.Key("1"), ["nav:resume", "nav:lesson_start", "say:keys_help", "play:2:es@61000"]),
    ], caller=caller)
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("2"), ["ask:resume[12]"]),
        (a.Key("2"), ["nav:lesson_start", "say:keys_help", "play:2:es@0"]),
    ], caller=caller)


def test_resume_question_unanswered_resumes():
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("2"), ["ask:resume[12]"]),
        (a.Silence(), ["ask:no_input+resume[12]"]),
        (a.Silence(), ["ask:no_input+resume[12]"]),
        (a.Silence(), ["nav:resume", "nav:lesson_start", "say:keys_help", "play:2:es@61000"]),
    ], caller=Caller(language="es", progress={2: 61_000}))


def test_silence_three_times_plays_a_lesson_once_then_says_goodbye():
    state = run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Silence(), ["nav:menu", "ask:no_input+" + MENU_ASK[4:]]),
        (a.Silence(), ["nav:menu", "ask:no_input+" + MENU_ASK[4:]]),
        # the first lesson she has not finished, instead of hanging up on her
        (a.Silence(), ["nav:no_input", "say:auto_play", "nav:lesson_start", "say:keys_help",
                       "play:2:es@0"]),
        (a.PlaybackEnded(2 * MINUTE), [f"listen:2:{2 * MINUTE}/{2 * MINUTE}:auto:heard={2 * MINUTE}",
                                       "nav:lesson_75", "nav:lesson_end", "clear:2", "ask:lesson_end[1840]"]),
        (a.Silence(), ["ask:no_input+lesson_end[1840]"]),
        (a.Silence(), ["ask:no_input+lesson_end[1840]"]),
        (a.Silence(), ["nav:menu", MENU_ASK]),
        (a.Silence(), ["nav:menu", "ask:no_input+" + MENU_ASK[4:]]),
        (a.Silence(), ["nav:menu", "ask:no_input+" + MENU_ASK[4:]]),
        (a.Silence(), ["say:goodbye", "end"]),
    ], caller=Caller(language="es", completed=frozenset({1})))
    assert state.node == "ended"


def test_wrong_keys_are_explained_and_counted():
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("6"), ["nav:menu", "ask:invalid+" + MENU_ASK[4:]]),
        (a.Key("*"), ["nav:menu", "ask:invalid+" + MENU_ASK[4:]]),
        (a.Key("3"), ["nav:lesson_start", "say:keys_help", "play:3:es@0"]),
    ])


def test_voice_picks_a_lesson_by_keyword_or_number_and_rejects_guesses():
    state = run_table([
        (None, ["nav:welcome", "nav:menu",
                "ask:welcome+menu+message_option+language_option+voice_hint[123089]"]),
        (a.Word(None, 0.2, accepted=False),
         ["nav:menu", "ask:not_understood+menu+message_option+language_option+voice_hint[123089]"]),
        (a.Word("polvo", 0.9), ["nav:lesson_start", "say:keys_help", "play:3:es@0"]),
    ], caller=Caller(language="es", voice=True))
    assert state.listening.via == "voice"
    engine = MenuEngine(STARTER, Settings())
    state, actions = engine.start(Caller(language="es", voice=True))
    assert "polvo" in actions[-1].words and "dos" in actions[-1].words
    state, actions = engine.handle(state, a.Word("dos", 0.95))
    assert render(actions[-1]) == "play:2:es@0"


def test_unsure_voice_command_to_leave_a_lesson_is_confirmed():
    run_table([
        (None, ["nav:welcome", "nav:menu",
                "ask:welcome+menu+message_option+language_option+voice_hint[123089]"]),
        (a.Key("1"), ["nav:lesson_start", "say:keys_help", "play:1:es@0"]),
        (a.Word("menú", 0.65, position_ms=20_000), ["ask:confirm_menu[12]"]),
        (a.Word("no", 0.9), ["play:1:es@20000"]),
        (a.Word("menú", 0.65, position_ms=30_000), ["ask:confirm_menu[12]"]),
        (a.Key("1"), ["listen:1:30000/120000:key:heard=30000", "save:1@30000", "nav:menu",
                      "ask:menu+message_option+language_option+voice_hint[123089]"]),
    ], caller=Caller(language="es", voice=True))


def test_sure_voice_command_acts_at_once():
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("1"), ["nav:lesson_start", "say:keys_help", "play:1:es@0"]),
        (a.Word("atrás", 0.95, position_ms=25_000), ["play:1:es@15000"]),
        (a.Word("siguiente", 0.95, position_ms=16_000),
         ["listen:1:25000/120000:key:heard=26000", "save:1@16000", "nav:lesson_start",
          "play:2:es@0"]),
    ])


def test_leave_a_message_listen_back_and_keep_it():
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("8"), ["nav:message", "say:record_intro", "record"]),
        (a.Recorded("m1.wav", 400), ["discard:m1.wav", "nav:message",
                                     "say:record_empty+record_intro", "record"]),
        (a.Recorded("m2.wav", 9_000), ["ask:record_review[123]"]),
        (a.Key("1"), ["playmsg", "ask:record_review[123]"]),
        (a.Key("3"), ["discard:m2.wav", "nav:message", "say:record_intro", "record"]),
        (a.Recorded("m3.wav", 7_000), ["ask:record_review[123]"]),
        (a.Key("2"), ["savemsg:m3.wav:es", "nav:menu", "ask:record_saved+" + MENU_ASK[4:]]),
    ])


@pytest.mark.parametrize("node_events, expected_tail", [
    # hang up during the welcome / menu: only the hang-up is logged
    ([], ["nav:hangup", "end"]),
    # during a lesson: the listen is logged with the furthest point heard, the place kept
    ([a.Key("1")], ["listen:1:42000/120000:key:heard=42000", "save:1@42000", "nav:hangup", "end"]),
    # while paused
    ([a.Key("1"), a.Key("5", position_ms=30_000)],
     ["listen:1:30000/120000:key:heard=30000", "save:1@30000", "nav:hangup", "end"]),
    # while reviewing a message: the message is kept, never lost
    ([a.Key("8"), a.Recorded("m.wav", 5_000)], ["savemsg:m.wav:es", "nav:hangup", "end"]),
])
def test_hanging_up_anywhere_loses_nothing(node_events, expected_tail):
    engine = MenuEngine(STARTER, Settings())
    state, _ = engine.start(Caller(language="es"))
    for event in node_events:
        state, _ = engine.handle(state, event)
    state, actions = engine.handle(state, a.HangUp(position_ms=42_000))
    assert [render(x) for x in actions] == expected_tail
    assert engine.handle(state, a.Silence())[1] == [a.End()]


def test_hang_up_while_recording_keeps_a_real_message_and_drops_a_blank():
    engine = MenuEngine(STARTER, Settings())
    state, _ = engine.start(Caller(language="es"))
    state, _ = engine.handle(state, a.Key("8"))
    _, actions = engine.handle(state, a.Recorded("long.wav", 6_000, hung_up=True))
    assert [render(x) for x in actions] == ["savemsg:long.wav:es", "nav:hangup", "end"]
    _, actions = engine.handle(state, a.Recorded("blank.wav", 200, hung_up=True))
    assert [render(x) for x in actions] == ["discard:blank.wav", "end"]


def test_submenus_go_down_and_back_up():
    view = catalog(lesson(1, "1", "casco", menu="epp"), lesson(2, "2", "guantes", menu="epp"),
                   lesson(3, "2", "polvo"),
                   menus=(Menu("epp", "Equipo", "main", "1"),))
    view.prompts[("title:menu:epp", "es")] = "h-epp"
    run_table([
        (None, ["nav:welcome", "nav:menu", "ask:welcome+menu+title:menu:epp+message_option+language_option[12089]"]),
        (a.Key("1"), ["nav:menu", "ask:title:menu:epp[120]"]),
        (a.Key("2"), ["nav:lesson_start", "say:keys_help", "play:2:es@0"]),
        (a.Key("0", position_ms=1000), ["listen:2:1000/120000:key:heard=1000", "save:2@1000",
                                        "nav:menu", "ask:title:menu:epp[120]"]),
        (a.Key("0"), ["nav:menu", "ask:menu+title:menu:epp+message_option+language_option[12089]"]),
    ], view=view)


def test_menu_prompt_names_each_item_with_its_key():
    engine = MenuEngine(STARTER, Settings())
    _, actions = engine.start(Caller(language="es"))
    names = [p.name for p in actions[-1].prompts]
    assert names[:6] == ["welcome", "menu", "para", "title:epp", "marque", "digit:1"]
    assert names.count("marque") == 3


def test_long_pause_ends_the_call_with_the_place_kept():
    settings = Settings()
    settings = replace(settings, menu=replace(settings.menu, max_attempts=2))
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("1"), ["nav:lesson_start", "say:keys_help", "play:1:es@0"]),
        (a.Key("5", position_ms=70_000), ["save:1@70000", "pause"]),
        (a.Silence(), ["pause"]),
        (a.Silence(), ["listen:1:70000/120000:key:heard=70000", "save:1@70000",
                       "say:goodbye", "end"]),
    ], settings=settings)


def test_after_her_first_lesson_she_is_offered_a_call_for_new_lessons_once():
    caller = Caller(language="es", offer_alerts=True)
    run_table([
        (None, ["nav:welcome", "nav:menu", WELCOME_MENU]),
        (a.Key("1"), ["nav:lesson_start", "say:keys_help", "play:1:es@0"]),
        (a.PlaybackEnded(2 * MINUTE), [f"listen:1:{2 * MINUTE}/{2 * MINUTE}:key:heard={2 * MINUTE}",
                                       "nav:lesson_75", "nav:lesson_end", "clear:1",
                                       "ask:alerts_offer[12]"]),
        (a.Key("1"), ["alerts:on", "ask:alerts_on+lesson_end[1840]"]),
        (a.Key("1"), ["nav:lesson_start", "play:2:es@0"]),
        (a.PlaybackEnded(2 * MINUTE), [f"listen:2:{2 * MINUTE}/{2 * MINUTE}:key:heard={2 * MINUTE}",
                                       "nav:lesson_75", "nav:lesson_end", "clear:2",
                                       "ask:lesson_end[1840]"]),
    ], caller=caller)


def test_an_alert_call_starts_with_its_lesson():
    run_table([
        (None, ["nav:welcome", "nav:lesson_start", "say:welcome+keys_help", "play:3:es@0"]),
    ], caller=Caller(language="es", start_lesson=3))


def test_every_prompt_the_engine_names_is_in_the_starter_pack():
    import re
    import tomllib
    from pathlib import Path

    from audio_lessons import menu

    source = re.sub(r"PROMPT_NAMES = \(.*?\)\n", "", Path(menu.__file__).read_text(),
                    flags=re.DOTALL)
    quoted = set(re.findall(r'"([a-z_]+)"', source))
    used = {name for name in quoted if name in menu.PROMPT_NAMES}
    assert used == set(menu.PROMPT_NAMES) - {"sorry"}  # "sorry" is played by the front ends
    starter = tomllib.loads((Path(menu.__file__).parent / "starter" / "prompts.toml").read_text())
    missing = [n for n in menu.PROMPT_NAMES if not starter.get(n, {}).get("es")]
    assert not missing, missing


def test_a_word_heard_without_confidence_is_offered_not_acted_on():
    run_table([
        (None, ["nav:welcome", "nav:menu",
                "ask:welcome+menu+message_option+language_option+voice_hint[123089]"]),
        (a.Word("polvo", 0.5, accepted=False), ["ask:did_you_mean+yes_no[12]"]),
        (a.Word("no", 0.9), ["nav:menu", "ask:menu+message_option+language_option+voice_hint[123089]"]),
        (a.Word("polvo", 0.45, accepted=False), ["ask:did_you_mean+yes_no[12]"]),
        (a.Word("sí", 0.7), ["nav:lesson_start", "say:keys_help", "play:3:es@0"]),
    ], caller=Caller(language="es", voice=True))
    # far too unsure: not even offered
    run_table([
        (None, ["nav:welcome", "nav:menu",
                "ask:welcome+menu+message_option+language_option+voice_hint[123089]"]),
        (a.Word("polvo", 0.2, accepted=False),
         ["nav:menu", "ask:not_understood+menu+message_option+language_option+voice_hint[123089]"]),
    ], caller=Caller(language="es", voice=True))


def test_a_lesson_heard_to_the_end_asks_its_question():
    quizzed = replace(lesson(2, "2", "terreno"), quiz_answer="2")
    view = catalog(lesson(1, "1", "epp"), quizzed)
    view.prompts[("quiz:terreno", "es")] = "h-quiz"
    view.prompts.update({("quiz_right", "es"): "h-right", ("quiz_wrong", "es"): "h-wrong"})
    end = f"listen:2:{2 * MINUTE}/{2 * MINUTE}:key:heard={2 * MINUTE}"
    run_table([
        (None, ["nav:welcome", "nav:menu", "ask:welcome+menu+message_option+language_option[12089]"]),
        (a.Key("2"), ["nav:lesson_start", "say:keys_help", "play:2:es@0"]),
        (a.PlaybackEnded(2 * MINUTE), [end, "nav:lesson_75", "nav:lesson_end", "clear:2",
                                       "ask:quiz:terreno[12]"]),
        (a.Key("2"), ["nav:quiz", "ask:quiz_right+lesson_end[1840]"]),
        (a.Key("8"), ["nav:lesson_start", "play:2:es@0"]),
        (a.PlaybackEnded(2 * MINUTE), [end, "nav:lesson_75", "nav:lesson_end", "clear:2",
                                       "ask:quiz:terreno[12]"]),
        (a.Word("sí", 0.9), ["nav:quiz", "ask:quiz_wrong+lesson_end[1840]"]),
    ], view=view)
    # leaving the lesson early: no question
    run_table([
        (None, ["nav:welcome", "nav:menu", "ask:welcome+menu+message_option+language_option[12089]"]),
        (a.Key("2"), ["nav:lesson_start", "say:keys_help", "play:2:es@0"]),
        (a.Key("9", position_ms=115_000), ["listen:2:115000/120000:key:heard=115000",
                                           "nav:lesson_75", "save:2@115000",
                                           "ask:lesson_end[1840]"]),
    ], view=view)
