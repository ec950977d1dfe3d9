"""A caller's journey on the real line, timed from her side: when she presses, what she hears.

She is pure dialplan (no client code on the hot path): answer, record what she hears
(MixMonitor ``r()``), press up to two keys at set seconds (or none), hold, hang up. Her press
times come from pallay's own engine: the moment each question has announced her key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from audio_lessons import actions as a
from audio_lessons import catalog, config, media, store
from audio_lessons.menu import Caller, MenuEngine
from tests.asterisk import CLOSE_RECORDING
from tests.heard import onset_seconds, seconds_of

CONTEXT = """
[pallay-journey]
exten => s,1,Answer()
 same => n,MixMonitor(${JOURNEY_REC}.wav,r(${JOURNEY_REC}-heard.wav))
 same => n,GotoIf($["${JOURNEY_K1}" = ""]?hold)
 same => n,Wait(${JOURNEY_W1})
 same => n,SendDTMF(${JOURNEY_K1},,120)
 same => n,GotoIf($["${JOURNEY_K2}" = ""]?hold)
 same => n,Wait(${JOURNEY_W2})
 same => n,SendDTMF(${JOURNEY_K2},,120)
 same => n(hold),Wait(${JOURNEY_HOLD})
 same => n,Hangup()
""" + CLOSE_RECORDING
KEY_S = 0.12  # the SendDTMF duration above
TURN_S = 0.15  # key end to the next prompt, at most (bench_line: p95 3 ms; generous)


@dataclass(frozen=True)
class Plan:
    """One journey: her presses (key, seconds after answer) and the lesson she should reach."""

    presses: tuple[tuple[str, float], ...]
    lesson: Path  # the phone variant of the lesson she should reach


def plan(settings: config.Settings, caller: Caller, keys: str = "") -> Plan:
    """She presses each of ``keys`` as soon as the question announces it; then nothing.

    A menu names each key with "digit:N" and each language offers itself ("language:es"): she
    presses at the end of that prompt. A key no prompt names is pressed at the question's end.
    """
    db = store.connect(settings.db_path)
    engine = MenuEngine(catalog.view(db), settings)
    state, actions = engine.start(caller)
    presses, clock = [], 0.0
    for key in keys:
        before, ask = _until_ask(actions)
        names = [p.name for p in ask.prompts]
        named = [i for i, n in enumerate(names) if n in (f"digit:{key}", _language(settings, key))]
        upto = named[0] + 1 if named else len(names)
        clock += seconds_of([_path(settings, h) for h in before + [p.media for p in ask.prompts[:upto]]])
        presses.append((key, round(clock, 2)))
        clock += KEY_S + TURN_S
        state, actions = engine.handle(state, a.Key(key))
    while not any(isinstance(x, a.PlayLesson) for x in actions):
        state, actions = engine.handle(state, a.Silence())
    play = next(x for x in actions if isinstance(x, a.PlayLesson))
    db.conn.close()
    return Plan(tuple(presses), _path(settings, play.media))


def _until_ask(actions) -> tuple[list[str], a.Ask]:
    """The media played before the first question of a step, and that question."""
    played = []
    for action in actions:
        if isinstance(action, a.Ask):
            return played, action
        if isinstance(action, a.Say):
            played += [p.media for p in action.prompts]
    raise AssertionError(f"no question in {actions}")


def _language(settings: config.Settings, key: str) -> str:
    languages = settings.menu.languages
    return f"language:{languages[int(key) - 1]}" if key.isdigit() and 0 < int(key) <= len(
        languages) else ""


def _path(settings: config.Settings, hash_: str) -> Path:
    return media.variant_path(settings.media_dir, hash_, "phone")


def call(ami, asterisk, number: str, journey: Plan, hold_s: float) -> str:
    """Place her call into the lesson line; return the recording's name (see ``heard``)."""
    rec = f"{asterisk.base_dir}/rec/journey-{uuid.uuid4().hex[:8]}"
    asterisk.host_path(rec).parent.mkdir(parents=True, exist_ok=True)
    (k1, at1), (k2, at2) = [*journey.presses, ("", 0.0), ("", 0.0)][:2]
    waits = [f"__JOURNEY_K1={k1}", f"__JOURNEY_W1={at1:.2f}", f"__JOURNEY_K2={k2}",
             f"__JOURNEY_W2={max(at2 - at1 - KEY_S, 0):.2f}"]
    reply = ami.action(
        "Originate", Channel="Local/s@pallay-journey", Context="pallay-lessons", Exten="s",
        Priority="1", Async="true", CallerID=f'"journey" <{number}>',
        Variable=[f"__JOURNEY_REC={rec}", *waits, f"__JOURNEY_HOLD={hold_s:.1f}"])
    assert reply["Response"] == "Success", reply
    return rec


def lesson_heard_at(ami, asterisk, rec: str, journey: Plan, timeout: float = 120) -> float | None:
    """Seconds from answer to the lesson's first sample in what she heard (None: never heard)."""
    ami.wait_recording(f"{rec}.wav", timeout)  # closed by Asterisk, not half-written
    return onset_seconds(asterisk.host_path(f"{rec}-heard.wav"), journey.lesson)
