"""The FastAGI layer and the deploy snippets against a real Asterisk 22 (see tests/asterisk.py)."""

from __future__ import annotations

import logging
import queue
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.agi import AgiChannel, Hangup
from tests.asterisk import DEPLOY, SOUNDS, AgiTestServer, Ami, Asterisk, agi_server, ami, asterisk

__all__ = ["agi_server", "ami", "asterisk"]  # fixtures, imported for pytest

FRAME = 160  # 20 ms at 8 kHz


def call(ami: Ami, asterisk: Asterisk, name: str, context: str = "pallay-lessons",
         wait: float = 2, keys: str = "", hold: float = 10, say: str = "", **extra: str) -> str:
    """Place a test caller into ``context``; return the recording's path inside the chroot."""
    rec = f"{asterisk.base_dir}/rec/{name}.wav"
    variables = [f"__PALLAY_REC={rec}", f"__PALLAY_WAIT={wait}", f"__PALLAY_KEYS={keys}",
                 f"__PALLAY_HOLD={hold}", f"__PALLAY_SAY={say}"]
    reply = ami.action("Originate", Channel="Local/s@pallay-test-caller", Context=context,
                       Exten="s", Priority="1", Async="true", Variable=variables, **extra)
    assert reply["Response"] == "Success", reply
    return rec


def caller_gone(ami: Ami, timeout: float = 20) -> dict[str, str]:
    """Wait for the caller's side (Local ...;2) to hang up; its h extension has closed the
    recording first (tests/asterisk.py CLOSE_RECORDING)."""
    return ami.wait_event(lambda e: e.get("Event") == "Hangup"
                          and e.get("Channel", "").startswith("Local/s@pallay-test-caller")
                          and e["Channel"].endswith(";2"), timeout)


def activity(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per 20 ms frame: where the caller heard sound (> -45 dBFS), and digital silence (< -60)."""
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    frames = samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME)
    rms = np.sqrt((frames ** 2).mean(axis=1)) / 32768
    level = 20 * np.log10(np.maximum(rms, 1e-9))
    return level > -45, level < -60


def gsm_seconds(asterisk: Asterisk, name: str) -> float:
    # GSM: 33 bytes per 20 ms frame
    return asterisk.host_path(f"{SOUNDS}/es/{name}.gsm").stat().st_size / 33 * 0.02


def test_key_press_reaches_the_handler_and_the_caller_hears_both_prompts(
        asterisk, agi_server: AgiTestServer, ami, caplog):
    results: queue.Queue = queue.Queue()

    async def lessons(ch: AgiChannel) -> None:
        await ch.answer()
        results.put(await ch.stream_file("demo-congrats", "0123456789#"))
        results.put(await ch.stream_file("digits/5", ""))
        await ch.hangup()

    agi_server.routes["lessons"] = lessons
    rec = call(ami, asterisk, "key", wait=2, keys="1", hold=10)
    digit, endpos = results.get(timeout=15)
    assert digit == "1"
    # The key went down 2 s in and lasts 250 ms; playback stops on its end: about 2.25 s heard.
    assert 2.0 * 8000 <= endpos <= 2.6 * 8000
    assert results.get(timeout=10) == (None, pytest.approx(gsm_seconds(asterisk, "digits/5") * 8000,
                                                            abs=400))
    caller_gone(ami)
    agi_server.wait_idle()

    heard, silent = activity(asterisk.host_path(rec))
    seconds = len(heard) * 0.02
    assert heard[10:int(1.9 / 0.02)].mean() > 0.6  # the first prompt, really heard
    # The key goes down 2.0 s in; playback stops when it is released (250 ms later): the cut is
    # the first digital silence after 2 s, the next prompt the first sound after the cut.
    cut = 100 + int(np.argmax(silent[100:]))
    onset = cut + int(np.argmax(heard[cut:]))
    delay = (onset - cut) * 0.02
    print(f"\nprompt cut by the key at {cut * 0.02:.2f} s; next prompt heard {delay * 1000:.0f} ms "
          f"later (20 ms frames); Asterisk started in {asterisk.started_seconds:.2f} s")
    assert 2.1 <= cut * 0.02 <= 2.5
    assert 0 < delay < 0.3
    # Ends when the handler hung up after the second prompt, not at the caller's 10 s hold.
    assert seconds == pytest.approx(onset * 0.02 + gsm_seconds(asterisk, "digits/5"), abs=0.4)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert asterisk.log_lines("ERROR") == []


def test_caller_hanging_up_mid_prompt_leaves_a_clean_hangup(asterisk, agi_server, ami, caplog):
    results: queue.Queue = queue.Queue()

    async def lessons(ch: AgiChannel) -> None:
        await ch.answer()
        try:
            await ch.stream_file("demo-instruct", "0123456789#")
        except Hangup as exc:
            results.put(exc)
            raise
        results.put("played to the end")

    agi_server.routes["lessons"] = lessons
    with caplog.at_level(logging.INFO, logger="ivr"):
        call(ami, asterisk, "hangup", wait=1.5, hold=0)
        outcome = results.get(timeout=15)
        caller_gone(ami)
        agi_server.wait_idle()
    assert isinstance(outcome, Hangup)
    assert 1.2 * 8000 <= outcome.endpos <= 2.0 * 8000  # she heard about 1.5 s
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("caller gone" in r.getMessage() for r in caplog.records)


def test_unknown_script_is_answered_with_a_clean_hangup(asterisk, agi_server, ami, caplog):
    asterisk.add_dialplan("unknown", f"""
[pallay-test-unknown]
exten => s,1,AGI(agi://127.0.0.1:{asterisk.agi_port}/nosuch)
 same => n,UserEvent(PallayTestAfterAgi,Status: ${{AGISTATUS}})
""")
    call(ami, asterisk, "unknown", context="pallay-test-unknown", wait=30, hold=0)
    gone = caller_gone(ami, timeout=10)  # long before the caller's own 30 s
    agi_server.wait_idle()
    assert gone["Cause"] in ("16", "0")
    assert not any(e.get("UserEvent") == "PallayTestAfterAgi" for e in ami.events)
    assert any("unknown AGI script 'nosuch'" in r.getMessage() for r in caplog.records)
    assert asterisk.log_lines("ERROR") == []


def test_missed_call_line_never_answers_and_passes_a_filtered_number(asterisk, ami):
    ami.action("Originate", Channel="Local/s@pallay-missed", Application="Wait", Data="5",
               CallerID='"Ana" <+51 987-654-321;evil>', Async="true")
    event = ami.wait_event(lambda e: e.get("UserEvent") == "PallayMissedCall")
    assert event["Number"] == "+51987654321"
    ami.wait_event(lambda e: e.get("Event") == "Hangup"
                   and e.get("Channel", "").startswith("Local/s@pallay-missed"))
    ups = [e for e in ami.events if e.get("Event") == "Newstate"
           and e.get("Channel", "").startswith("Local/s@pallay-missed")
           and e.get("ChannelStateDesc") == "Up"]
    assert ups == []  # never answered: free for the caller


def test_ami_user_has_only_what_pallay_needs(ami):
    assert ami.action("CoreShowChannels")["Response"] == "Success"
    assert ami.action("Command", Command="core show version")["Message"] == "Permission denied"
    shell = ami.action("Originate", Channel="Local/s@pallay-test-caller", Application="System",
                       Data="touch /tmp/pwned")
    assert shell["Response"] == "Error"  # needs the "system" right, which pallay lacks
    assert not Path("/tmp/pwned").exists()


def test_dialplan_snippet_cannot_reach_a_trunk():
    text = (DEPLOY / "extensions_pallay.conf").read_text()
    code = "\n".join(line.split(";")[0] for line in text.splitlines())
    for forbidden in ("Dial(", "System(", "Originate(", "Exec(", "TrySystem(", "include"):
        assert forbidden.lower() not in code.lower(), forbidden
    contexts = set(re.findall(r"^\[([\w-]+)\]", code, re.MULTILINE))
    assert contexts == {"pallay-lessons", "pallay-missed", "pallay-outbound"}
    for target in re.findall(r"Goto\(([^)]*)\)", code):
        parts = target.split(",")
        assert len(parts) < 3 or parts[0] in contexts, target
    assert "Answer(" not in code.split("[pallay-missed]")[1]
    assert "FILTER(" in code


def test_record_file_keeps_what_the_caller_said(asterisk, agi_server, ami):
    results: queue.Queue = queue.Queue()
    path = f"{asterisk.base_dir}/rec/message"

    async def lessons(ch: AgiChannel) -> None:
        await ch.answer()
        results.put(await ch.record_file(path, "wav", "#", timeout_ms=1500, beep=False))
        await ch.hangup()

    agi_server.routes["lessons"] = lessons
    call(ami, asterisk, "record", wait=0, say="demo-congrats", hold=0)
    result = results.get(timeout=15)
    agi_server.wait_idle()
    assert (result.digit, result.reason) == (None, "timeout")
    assert result.endpos == pytest.approx(1.5 * 8000, abs=0.2 * 8000)
    with wave.open(str(asterisk.host_path(path + ".wav"))) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(1.5, abs=0.2)
