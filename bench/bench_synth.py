"""Starter-pack synthesis: one child process for the whole batch vs one child per text (baseline).

Run: .venv/bin/python -m bench.bench_synth
"""

from __future__ import annotations

import statistics
import tempfile
import time
import wave
from pathlib import Path

from audio_lessons.config import VoiceSettings
from audio_lessons.speech import espeak
from audio_lessons.starter import load_lessons, load_prompts
from audio_lessons.synth import Pyttsx3Synthesizer
from bench import Figure, Unavailable


def _audio_seconds(paths: list[Path]) -> float:
    total = 0.0
    for path in paths:
        with wave.open(str(path), "rb") as w:
            total += w.getnframes() / w.getframerate()
    return total


def main() -> list[Figure]:
    if not espeak.available():
        raise Unavailable("espeak-ng is not installed (make install-test installs it)")
    lessons = load_lessons()
    items = [(text, lang) for (_, lang), text in load_prompts(lessons=lessons).items()]
    items += [(lesson.script, "es") for lesson in lessons]
    print(f"{len(items)} starter texts (prompts, titles, 7 lesson scripts), espeak-ng via pyttsx3")
    print(f"{'method':<28}{'wall s':>8}{'audio s':>9}{'x real time':>13}")
    walls = []
    for name, batched in (("one child per text (base)", False), ("one child per batch", True)):
        with tempfile.TemporaryDirectory() as tmp:
            tts = Pyttsx3Synthesizer(VoiceSettings(), Path(tmp))
            started = time.monotonic()
            if batched:
                paths = tts.render_many(items)
            else:
                paths = [tts.render(text, lang) for text, lang in items]
            wall = time.monotonic() - started
            walls.append(wall)
            audio = _audio_seconds(paths)
            print(f"{name:<28}{wall:>8.1f}{audio:>9.0f}{audio / wall:>13.0f}")
    with tempfile.TemporaryDirectory() as tmp:
        tts = Pyttsx3Synthesizer(VoiceSettings(), Path(tmp))
        tts.render_many(items)
        hits = []
        for _ in range(5):
            started = time.monotonic()
            tts.render_many(items)
            hits.append(time.monotonic() - started)
        print(f"{'all cached (median of 5)':<28}{statistics.median(hits):>8.3f}")
    return [Figure("starter pack, one child per batch vs per text", f"{walls[0] / walls[1]:.2f}x "
                   "faster"), Figure("starter pack, all cached", f"{statistics.median(hits):.3f} s")]


if __name__ == "__main__":
    main()
