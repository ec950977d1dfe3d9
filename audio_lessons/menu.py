"""The menu engine: one pure state machine, ``(state, event) -> (state, actions)``, for phone and kiosk.

It never touches a file, a clock or a socket: front ends turn its actions into AGI commands or speaker
calls and feed back what the listener did. Nodes (``State.node``):

    language -> menu -> [resume] -> playing <-> paused / confirm -> after -> ...
                     -> record -> review
    language -> playing the first lesson at once, for a first-time caller
    The welcome opens the first question and every prompt takes a key: nothing pressed is lost.
    any node --(3 silences or wrong keys)--> something useful (see ``_fallback``), never a bare hang-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from audio_lessons import keymap
from audio_lessons.actions import (
    Action,
    Ask,
    ClearProgress,
    DiscardMessage,
    End,
    Event,
    HangUp,
    Key,
    LogListen,
    LogNav,
    Pause,
    PlaybackEnded,
    PlayLesson,
    PlayMessage,
    Prompt,
    Record,
    Recorded,
    SaveMessage,
    SaveProgress,
    Say,
    SetAlerts,
    SetLanguage,
    Silence,
    Word,
)
from audio_lessons.catalog import ROOT_MENU, CatalogView, Lesson, Menu
from audio_lessons.config import Settings

MIN_MESSAGE_MS = 1000
# Every prompt the engine may play, besides "digit:N", "title:<lesson or menu slug>",
# "quiz:<lesson slug>" and "language:<code>" (each language offering itself: "Para español,
# marque uno"; one prompt each, so a caller can press as soon as she hears hers).
PROMPT_NAMES = (
    "welcome", "first_lesson", "menu", "para", "marque", "message_option", "language_option",
    "voice_hint", "invalid", "no_input", "not_understood", "auto_play", "resume", "keys_help",
    "paused", "confirm_menu", "did_you_mean", "yes_no", "lesson_end", "no_more", "quiz_right",
    "quiz_wrong", "alerts_offer", "alerts_on",
    "record_intro", "record_empty", "record_review", "record_saved", "goodbye", "sorry")
# How a menu item is announced, per language: "Para <el polvo>, marque <cuatro>".
ITEM_PATTERN = {
    "es": ("para", "{title}", "marque", "{digit}"),
    "qu": ("{title}", "{digit}", "marque"),
}
PAUSE_KEYS = keymap.PAUSE + keymap.MENU
PAUSE_WORDS = {"pausa": keymap.PAUSE, "seguir": keymap.PAUSE, "continuar": keymap.PAUSE,
               "menú": keymap.MENU}
AFTER_KEYS = keymap.NEXT + keymap.REPLAY + keymap.PREVIOUS + keymap.MENU
YES_NO = {**{w: "1" for w in keymap.YES_WORDS}, **{w: "2" for w in keymap.NO_WORDS}}
QUIZ_WORDS = {**YES_NO, "verdad": "1", "falso": "2"}

Step = tuple["State", list[Action]]


@dataclass(frozen=True)
class Caller:
    """What a front end knows about the listener when a call or kiosk session starts."""

    language: str | None = None  # remembered choice, if any
    progress: Mapping[int, int] = field(default_factory=dict)  # lesson id -> position ms
    completed: frozenset[int] = frozenset()
    voice: bool = False  # a recogniser is listening after each prompt
    offer_alerts: bool = False  # phone line, known number, not yet subscribed to new-lesson calls
    start_lesson: int | None = None  # an alert call: go straight to this lesson
    first_time: bool = False  # never heard a lesson here: the first one comes at once


@dataclass(frozen=True)
class Listening:
    """One visit to a lesson, from choosing it to leaving it (seeks and pauses stay inside)."""

    lesson_id: int
    language: str
    media: str
    duration_ms: int
    via: str
    segment_start: int = 0  # where the current stretch of playback started
    furthest_ms: int = 0
    heard_ms: int = 0

    def at(self, position: int) -> Listening:
        """Account for playback that ran from ``segment_start`` to ``position``."""
        position = max(0, min(position, self.duration_ms))
        return replace(self, heard_ms=self.heard_ms + max(0, position - self.segment_start),
                       furthest_ms=max(self.furthest_ms, position), segment_start=position)

    def seek(self, position: int) -> Listening:
        return replace(self, segment_start=max(0, min(position, self.duration_ms)))


@dataclass(frozen=True)
class State:
    node: str
    language: str
    voice: bool = False
    menu: str = ROOT_MENU
    attempts: int = 0
    listening: Listening | None = None
    progress: Mapping[int, int] = field(default_factory=dict)
    completed: frozenset[int] = frozenset()
    auto_played: bool = False
    helped: bool = False  # the playback keys were explained this session
    message: Recorded | None = None
    pending_key: str | None = None  # a leaving command waiting for confirmation
    offer_alerts: bool = False
    first_call: bool = False  # nothing known about her: the first lesson comes at once


class MenuEngine:
    """Walks a catalogue snapshot; holds no state of its own between calls."""

    def __init__(self, catalog: CatalogView, settings: Settings):
        self.catalog = catalog
        self.menu_settings = settings.menu
        self.confirm_below = settings.speech.confirm_threshold
        self.suggest_above = settings.speech.suggest_threshold

    # ---- entry points ---------------------------------------------------------------------------

    def start(self, caller: Caller) -> Step:
        known = caller.language in self.menu_settings.languages
        language = caller.language if known else self.menu_settings.default_language
        state = State(node="welcome", language=language, voice=caller.voice,
                      progress=dict(caller.progress), completed=caller.completed,
                      offer_alerts=caller.offer_alerts,
                      first_call=caller.first_time and self.menu_settings.first_lesson_at_once)
        lesson = self.catalog.lessons.get(caller.start_lesson)
        if lesson is not None:
            state, actions = self._select(state, lesson, "auto")
        elif known:
            state, actions = self._enter_menu(state)
        else:
            state, actions = self._enter_language(state)
        return state, [LogNav("welcome"), *self._with_welcome(state, actions)]

    def _with_welcome(self, state: State, actions: list[Action]) -> list[Action]:
        """The welcome opens the first prompt, so a key pressed during it answers that prompt."""
        welcome = self._prompts(state, "welcome")
        for i, action in enumerate(actions):
            if isinstance(action, (Ask, Say)):
                return [*actions[:i], replace(action, prompts=welcome + action.prompts),
                        *actions[i + 1:]]
            if isinstance(action, PlayLesson):
                return [*actions[:i], Say(welcome, action.keys), *actions[i:]]
        return actions

    def handle(self, state: State, event: Event) -> Step:
        if state.node == "ended":
            return state, [End()]
        if isinstance(event, HangUp):
            return self._hang_up(state, event)
        handler = getattr(self, f"_on_{state.node}")
        return handler(state, event)

    # ---- prompts --------------------------------------------------------------------------------

    def prompt(self, name: str, language: str) -> Prompt | None:
        """The prompt in ``language``, else in the default language, else None."""
        for lang in (language, self.menu_settings.default_language):
            media = self.catalog.prompts.get((name, lang))
            if media:
                return Prompt(name, lang, media)
        return None  # skipped: better a shorter menu than a dead call; `pallay init` adds them all

    def _prompts(self, state: State, *names: str) -> tuple[Prompt, ...]:
        found = (self.prompt(n, state.language) for n in names)
        return tuple(p for p in found if p is not None)

    def _say(self, state: State, *names: str, keys: str = "") -> list[Action]:
        prompts = self._prompts(state, *names)
        return [Say(prompts, keys)] if prompts else []

    def _ask(self, state: State, names: tuple[str, ...], keys: str, words: Mapping[str, str],
             prefix: tuple[str, ...] = ()) -> Ask:
        spoken = tuple(sorted(set(words) | {w for w, k in keymap.DIGIT_WORDS.items() if k in keys}))
        return Ask(self._prompts(state, *prefix, *names), keys, spoken if state.voice else (),
                   self.menu_settings.listen_seconds)

    # ---- choosing: one way to read keys, words and silence at every question -------------------

    def _choose(self, state: State, event: Event, keys: str, words: Mapping[str, str],
                chosen, fallback, reask, suggest=None) -> Step:
        """Route ``event`` to ``chosen(state, key, via)``; retry or fall back on silence/wrong input.

        ``suggest(state, key)``, where given, asks "did you mean...?" for a word heard with a
        confidence too low to act on but high enough to be worth asking about.
        """
        if isinstance(event, Key) and event.digit in keys:
            return chosen(replace(state, attempts=0), event.digit, event.via)
        if isinstance(event, Word) and event.text:
            key = keymap.word_to_key(event.text, dict(words))
            if key in keys and event.accepted:
                return chosen(replace(state, attempts=0), key, "voice")
            if key in keys and suggest and event.confidence >= self.suggest_above:
                return suggest(state, key)
        if isinstance(event, Silence):
            reason = "no_input"
        elif isinstance(event, Word):
            reason = "not_understood"
        else:
            reason = "invalid"
        attempts = state.attempts + 1
        if attempts >= self.menu_settings.max_attempts:
            return fallback(replace(state, attempts=0))
        return reask(replace(state, attempts=attempts), prefix=(reason,))

    # ---- language -------------------------------------------------------------------------------

    def _language_keys(self) -> dict[str, str]:
        return {str(i + 1): lang for i, lang in enumerate(self.menu_settings.languages)}

    def _enter_language(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        state = replace(state, node="language")
        keys = "".join(self._language_keys())
        return state, [LogNav("language"),
                       self._ask(state, self._language_prompt_names(), keys,
                                 keymap.LANGUAGE_WORDS, prefix)]

    def _language_prompt_names(self) -> tuple[str, ...]:
        return tuple(f"language:{lang}" for lang in self.menu_settings.languages)

    def _on_language(self, state: State, event: Event) -> Step:
        if isinstance(event, Silence):
            return self._default_language(state)  # the menu offers the other language again
        keys = "".join(self._language_keys())
        return self._choose(state, event, keys, keymap.LANGUAGE_WORDS, self._set_language,
                            self._default_language, self._enter_language)

    def _set_language(self, state: State, key: str, via: str) -> Step:
        language = self._language_keys()[key]
        state = replace(state, language=language)
        lessons = self.catalog.ordered_lessons()
        if state.first_call and lessons:
            state, actions = self._select(state, lessons[0], "auto")
        else:
            state, actions = self._enter_menu(state, ROOT_MENU)
        return state, [SetLanguage(language), *actions]

    def _default_language(self, state: State) -> Step:
        return self._set_language(state, "1", "auto")

    # ---- menus ----------------------------------------------------------------------------------

    def _menu_keys(self, state: State) -> dict[str, Lesson | Menu | str]:
        choices: dict[str, Lesson | Menu | str] = dict(self.catalog.items(state.menu))
        choices[keymap.MENU] = "up"
        if state.menu == ROOT_MENU:
            choices[keymap.MESSAGE_KEY] = "message"
            if len(self.menu_settings.languages) > 1:
                choices[keymap.LANGUAGE_KEY] = "language"
        return choices

    def _menu_words(self, state: State) -> dict[str, str]:
        words = dict(keymap.MENU_WORDS)
        for key, item in self.catalog.items(state.menu):
            for word in getattr(item, "keywords", ()):
                words[word] = key
        return words

    def _menu_prompt_names(self, state: State) -> tuple[str, ...]:
        names = ["menu" if state.menu == ROOT_MENU else f"title:menu:{state.menu}"]
        pattern = ITEM_PATTERN.get(state.language, ITEM_PATTERN["es"])
        for key, item in self.catalog.items(state.menu):
            title = f"title:{item.slug}" if isinstance(item, Lesson) else f"title:menu:{item.slug}"
            names += [{"{title}": title, "{digit}": f"digit:{key}"}.get(p, p) for p in pattern]
        if state.menu == ROOT_MENU:
            names.append("message_option")
            if len(self.menu_settings.languages) > 1:
                names.append("language_option")
        if state.voice:
            names.append("voice_hint")
        return tuple(names)

    def _enter_menu(self, state: State, menu: str | None = None,
                    prefix: tuple[str, ...] = ()) -> Step:
        state = replace(state, node="menu", menu=menu or state.menu, listening=None)
        keys = "".join(self._menu_keys(state))
        ask = self._ask(state, self._menu_prompt_names(state), keys, self._menu_words(state), prefix)
        return state, [LogNav("menu", state.menu), ask]

    def _on_menu(self, state: State, event: Event) -> Step:
        return self._choose(state, event, "".join(self._menu_keys(state)), self._menu_words(state),
                            self._menu_choice, self._menu_fallback, self._enter_menu,
                            suggest=self._enter_suggest)

    def _enter_suggest(self, state: State, key: str, prefix: tuple[str, ...] = ()) -> Step:
        """She said something like an item's word: "Do you want the lesson on <title>?"."""
        item = self._menu_keys(state)[key]
        if isinstance(item, Lesson):
            names = ("did_you_mean", f"title:{item.slug}", "yes_no")
        elif isinstance(item, Menu):
            names = ("did_you_mean", f"title:menu:{item.slug}", "yes_no")
        else:
            names = ("did_you_mean", f"{item}_option", "yes_no")
        state = replace(state, node="suggest", pending_key=key)
        return state, [self._ask(state, names, "12", YES_NO, prefix)]

    def _on_suggest(self, state: State, event: Event) -> Step:
        def reask(s: State, prefix: tuple[str, ...] = ()) -> Step:
            return self._enter_suggest(s, s.pending_key, prefix)
        return self._choose(state, event, "12", YES_NO, self._suggested,
                            lambda s: self._enter_menu(s), reask)

    def _suggested(self, state: State, key: str, via: str) -> Step:
        item_key = state.pending_key
        state = replace(state, node="menu", pending_key=None)
        if key == "1":
            return self._menu_choice(state, item_key, "voice")
        return self._enter_menu(state)

    def _menu_choice(self, state: State, key: str, via: str) -> Step:
        choice = self._menu_keys(state)[key]
        if isinstance(choice, Lesson):
            return self._select(state, choice, via)
        if isinstance(choice, Menu):
            return self._enter_menu(state, choice.slug)
        if choice == "message":
            return self._enter_record(state)
        if choice == "language":
            return self._enter_language(state)
        parent = self.catalog.menus[state.menu].parent if state.menu in self.catalog.menus else None
        return self._enter_menu(state, parent or ROOT_MENU)

    def _menu_fallback(self, state: State) -> Step:
        """After 3 silences: play the lesson she most likely wants (once), then say goodbye."""
        if state.auto_played:
            return self._goodbye(state)
        lessons = self.catalog.ordered_lessons()
        unfinished = [le for le in lessons if le.id in state.progress]
        fresh = [le for le in lessons if le.id not in state.completed]
        pick = (unfinished or fresh or lessons or [None])[0]
        if pick is None:
            return self._goodbye(state)
        state = replace(state, auto_played=True)
        say = self._say(state, "auto_play", keys=keymap.PLAYBACK_KEYS)
        state, actions = self._select(state, pick, "auto")
        return state, [LogNav("no_input", "auto_play"), *say, *actions]

    # ---- choosing and playing a lesson ----------------------------------------------------------

    def _select(self, state: State, lesson: Lesson, via: str, offset: int | None = None) -> Step:
        recording = lesson.recording(state.language, self.menu_settings.default_language)
        if recording is None:
            return self._enter_menu(state, prefix=("invalid",))
        listening = Listening(lesson.id, recording.language, recording.media,
                              recording.duration_ms, via)
        state = replace(state, listening=listening, menu=lesson.menu)
        saved = state.progress.get(lesson.id, 0)
        resumable = (self.menu_settings.resume_min_ms <= saved
                     <= recording.duration_ms - self.menu_settings.resume_tail_ms)
        if offset is None and resumable:
            return self._enter_resume(state)
        return self._play(state, offset or 0, start=True)

    def _enter_resume(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        state = replace(state, node="resume")
        return state, [self._ask(state, ("resume",), "12", {"continuar": "1", "inicio": "2"},
                                 prefix)]

    def _on_resume(self, state: State, event: Event) -> Step:
        return self._choose(state, event, "12", {"continuar": "1", "inicio": "2"},
                            self._resume_choice, lambda s: self._resume_choice(s, "1", "auto"),
                            self._enter_resume)

    def _resume_choice(self, state: State, key: str, via: str) -> Step:
        if key != "1":
            return self._play(state, 0, start=True)
        state, actions = self._play(state, state.progress.get(state.listening.lesson_id, 0), True)
        return state, [LogNav("resume", str(state.listening.lesson_id)), *actions]

    def _play(self, state: State, offset: int, start: bool = False) -> Step:
        listening = state.listening.seek(offset)
        state = replace(state, node="playing", listening=listening, pending_key=None)
        actions: list[Action] = []
        if start:
            actions.append(LogNav("lesson_start", str(listening.lesson_id)))
            hint = "first_lesson" if state.first_call else None if state.helped else "keys_help"
            if hint:
                actions += self._say(state, hint, keys=keymap.PLAYBACK_KEYS)
            state = replace(state, first_call=False, helped=state.helped or hint == "keys_help")
        actions.append(PlayLesson(listening.lesson_id, listening.language, listening.media,
                                  listening.segment_start, keymap.PLAYBACK_KEYS))
        return state, actions

    def _on_playing(self, state: State, event: Event) -> Step:
        listening = state.listening
        if isinstance(event, PlaybackEnded):
            state = replace(state, listening=listening.at(listening.duration_ms))
            return self._lesson_done(state)
        position = getattr(event, "position_ms", None)
        position = listening.segment_start if position is None else position
        state = replace(state, listening=listening.at(position))
        key = self._playback_key(event)
        if key is None:
            return self._play(state, position)
        if (isinstance(event, Word) and key in keymap.LEAVING_KEYS
                and event.confidence < self.confirm_below):
            return self._enter_confirm(replace(state, pending_key=key))
        via = "voice" if isinstance(event, Word) else event.via
        return self._playback_command(state, key, position, via)

    @staticmethod
    def _playback_key(event: Event) -> str | None:
        if isinstance(event, Key) and event.digit in keymap.PLAYBACK_KEYS:
            return event.digit
        if isinstance(event, Word) and event.accepted and event.text:
            return keymap.PLAYBACK_WORDS.get(event.text)
        return None

    def _playback_command(self, state: State, key: str, position: int, via: str = "key") -> Step:
        skip, duration = self.menu_settings.skip_ms, state.listening.duration_ms
        if key == keymap.PAUSE:
            return self._enter_paused(state, save=True)
        if key == keymap.BACK:
            return self._play(state, max(0, position - skip))
        if key == keymap.FORWARD:
            if position + skip >= duration:
                return self._lesson_done(state)
            return self._play(state, position + skip)
        if key == keymap.REPLAY:
            return self._play(state, 0)
        state, actions = self._finish_listen(state)
        if key in (keymap.NEXT, keymap.PREVIOUS):
            return self._neighbour(state, actions, 1 if key == keymap.NEXT else -1, via)
        state, more = self._enter_menu(state)
        return state, actions + more

    def _neighbour(self, state: State, actions: list[Action], step: int, via: str) -> Step:
        lessons = self.catalog.ordered_lessons()
        ids = [le.id for le in lessons]
        current = state.listening.lesson_id if state.listening else None
        index = ids.index(current) + step if current in ids else -1
        if not 0 <= index < len(lessons):
            state, more = self._enter_menu(replace(state, listening=None), prefix=("no_more",))
            return state, actions + more
        state, more = self._select(replace(state, listening=None), lessons[index], via)
        return state, actions + more

    # ---- pause and confirmation -----------------------------------------------------------------

    def _enter_paused(self, state: State, save: bool = False) -> Step:
        listening = state.listening
        actions: list[Action] = []
        if save:
            actions.append(SaveProgress(listening.lesson_id, listening.language,
                                        listening.segment_start))
            state = replace(state, progress={**state.progress,
                                             listening.lesson_id: listening.segment_start})
        state = replace(state, node="paused")
        wait = self.menu_settings.pause_seconds
        return state, actions + [Pause(self._prompts(state, "paused"), PAUSE_KEYS, wait)]

    def _on_paused(self, state: State, event: Event) -> Step:
        key = event.digit if isinstance(event, Key) else None
        if isinstance(event, Word) and event.accepted and event.text:
            key = PAUSE_WORDS.get(event.text)
        if key == keymap.PAUSE:
            return self._play(replace(state, attempts=0), state.listening.segment_start)
        if key == keymap.MENU:
            return self._playback_command(state, keymap.MENU, state.listening.segment_start)
        attempts = state.attempts + 1
        if isinstance(event, Silence) and attempts >= self.menu_settings.max_attempts:
            state, actions = self._finish_listen(state)
            state, more = self._goodbye(state)
            return state, actions + more
        return self._enter_paused(replace(state, attempts=attempts))

    def _enter_confirm(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        state = replace(state, node="confirm")
        return state, [self._ask(state, ("confirm_menu",), "12", YES_NO, prefix)]

    def _on_confirm(self, state: State, event: Event) -> Step:
        return self._choose(state, event, "12", YES_NO, self._confirmed,
                            lambda s: self._confirmed(s, "2", "auto"), self._enter_confirm)

    def _confirmed(self, state: State, key: str, via: str) -> Step:
        position = state.listening.segment_start
        if key == "1":
            return self._playback_command(state, state.pending_key, position, via)
        return self._play(state, position)

    # ---- the end of a lesson --------------------------------------------------------------------

    def _heard_to_end(self, listening: Listening) -> bool:
        """The closing seconds count as the end (as in the statistics' quartiles)."""
        return listening.furthest_ms >= listening.duration_ms - self.menu_settings.resume_tail_ms // 5

    def _finish_listen(self, state: State) -> Step:
        """Log the visit that is ending and keep (or clear) where she stopped."""
        le = state.listening
        if le is None:
            return state, []
        done = self._heard_to_end(le)
        actions: list[Action] = [LogListen(le.lesson_id, le.language, le.via, le.furthest_ms,
                                           le.duration_ms, le.heard_ms)]
        if le.furthest_ms * 4 >= le.duration_ms * 3:
            actions.append(LogNav("lesson_75", str(le.lesson_id)))
        progress = dict(state.progress)
        if done:
            actions += [LogNav("lesson_end", str(le.lesson_id)), ClearProgress(le.lesson_id)]
            progress.pop(le.lesson_id, None)
        else:
            actions.append(SaveProgress(le.lesson_id, le.language, le.segment_start))
            progress[le.lesson_id] = le.segment_start
        completed = state.completed | {le.lesson_id} if done else state.completed
        return replace(state, progress=progress, completed=completed), actions

    def _lesson_done(self, state: State) -> Step:
        state, actions = self._finish_listen(state)
        lesson = self.catalog.lessons.get(state.listening.lesson_id)
        if (lesson and lesson.quiz_answer and self._heard_to_end(state.listening)
                and self.prompt(f"quiz:{lesson.slug}", state.language)):
            state, more = self._enter_quiz(state)
        else:
            state, more = self._next_after_lesson(state)
        return state, actions + more

    def _next_after_lesson(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        if state.offer_alerts:
            return self._enter_alerts(replace(state, offer_alerts=False), prefix)
        return self._enter_after(state, prefix)

    def _enter_quiz(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        """One yes/no question on the lesson she just heard to the end."""
        state = replace(state, node="quiz")
        slug = self.catalog.lessons[state.listening.lesson_id].slug
        return state, [self._ask(state, (f"quiz:{slug}",), "12", QUIZ_WORDS, prefix)]

    def _on_quiz(self, state: State, event: Event) -> Step:
        return self._choose(state, event, "12", QUIZ_WORDS, self._quiz_answered,
                            self._next_after_lesson, self._enter_quiz)

    def _quiz_answered(self, state: State, key: str, via: str) -> Step:
        right = key == self.catalog.lessons[state.listening.lesson_id].quiz_answer
        state, actions = self._next_after_lesson(
            state, prefix=("quiz_right" if right else "quiz_wrong",))
        return state, [LogNav("quiz", "right" if right else "wrong"), *actions]

    def _enter_alerts(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        """Once per call, after a lesson: offer a free call when there is a new lesson."""
        state = replace(state, node="alerts")
        return state, [self._ask(state, ("alerts_offer",), "12", YES_NO, prefix)]

    def _on_alerts(self, state: State, event: Event) -> Step:
        return self._choose(state, event, "12", YES_NO, self._alerts_choice,
                            lambda s: self._enter_after(s), self._enter_alerts)

    def _alerts_choice(self, state: State, key: str, via: str) -> Step:
        if key != "1":
            return self._enter_after(state)
        state, actions = self._enter_after(state, prefix=("alerts_on",))
        return state, [SetAlerts(True), *actions]

    def _enter_after(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        state = replace(state, node="after")
        return state, [self._ask(state, ("lesson_end",), AFTER_KEYS, keymap.PLAYBACK_WORDS, prefix)]

    def _on_after(self, state: State, event: Event) -> Step:
        return self._choose(state, event, AFTER_KEYS, keymap.PLAYBACK_WORDS, self._after_choice,
                            lambda s: self._enter_menu(s), self._enter_after)

    def _after_choice(self, state: State, key: str, via: str) -> Step:
        if key == keymap.REPLAY:
            lesson = self.catalog.lessons.get(state.listening.lesson_id)
            return self._select(state, lesson, via, offset=0)
        if key == keymap.MENU:
            return self._enter_menu(state)
        return self._neighbour(state, [], 1 if key == keymap.NEXT else -1, via)

    # ---- leaving a message ----------------------------------------------------------------------

    def _enter_record(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        state = replace(state, node="record", message=None)
        return state, [LogNav("message"), *self._say(state, *prefix, "record_intro"),
                       Record(self.menu_settings.message_max_seconds, keymap.RECORD_STOP_KEY)]

    def _on_record(self, state: State, event: Event) -> Step:
        if not isinstance(event, Recorded):
            return self._enter_record(state)
        if event.duration_ms < MIN_MESSAGE_MS:
            attempts = state.attempts + 1
            actions: list[Action] = [DiscardMessage(event.path)]
            if event.hung_up:
                return replace(state, node="ended"), actions + [End()]
            if attempts >= self.menu_settings.max_attempts:
                state, more = self._enter_menu(replace(state, attempts=0), ROOT_MENU)
            else:
                state, more = self._enter_record(replace(state, attempts=attempts),
                                                 prefix=("record_empty",))
            return state, actions + more
        state = replace(state, message=event, attempts=0)
        if event.hung_up:
            return self._hang_up(state, HangUp())
        return self._enter_review(state)

    def _enter_review(self, state: State, prefix: tuple[str, ...] = ()) -> Step:
        state = replace(state, node="review")
        return state, [self._ask(state, ("record_review",), "123", {}, prefix)]

    def _on_review(self, state: State, event: Event) -> Step:
        return self._choose(state, event, "123", {}, self._review_choice, self._keep_and_leave,
                            self._enter_review)

    def _review_choice(self, state: State, key: str, via: str) -> Step:
        message = state.message
        if key == "1":
            state, actions = self._enter_review(state)
            return state, [PlayMessage(message.path), *actions]
        if key == "3":
            state, actions = self._enter_record(state)
            return state, [DiscardMessage(message.path), *actions]
        state, actions = self._enter_menu(replace(state, message=None), ROOT_MENU,
                                          prefix=("record_saved",))
        return state, [self._save_message(state, message), *actions]

    def _keep_and_leave(self, state: State) -> Step:
        """Silence while reviewing: never lose what she said."""
        saved = self._save_message(state, state.message)
        state, actions = self._goodbye(replace(state, message=None), "record_saved")
        return state, [saved, *actions]

    @staticmethod
    def _save_message(state: State, message: Recorded) -> SaveMessage:
        return SaveMessage(message.path, message.duration_ms, state.language)

    # ---- leaving --------------------------------------------------------------------------------

    def _goodbye(self, state: State, *before: str) -> Step:
        state = replace(state, node="ended", listening=None)
        return state, [*self._say(state, *before, "goodbye"), End()]

    def _hang_up(self, state: State, event: HangUp) -> Step:
        actions: list[Action] = []
        if state.listening is not None and state.node in ("playing", "paused", "confirm"):
            position = event.position_ms
            listening = state.listening
            if state.node == "playing" and position is not None:
                listening = listening.at(position)
            state, actions = self._finish_listen(replace(state, listening=listening))
        if state.message is not None:
            actions.append(self._save_message(state, state.message))
        state = replace(state, node="ended", listening=None, message=None)
        return state, [*actions, LogNav("hangup"), End()]
