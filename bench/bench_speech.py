"""Voice-command benchmark: PocketSphinx (Spanish) at 8 and 16 kHz, rejection on and off.

Accuracy: command words spoken by espeak-ng (3 voice/speed settings) with a 20 dB and a 10 dB
white-noise floor; "correct" means accepted AND right. False accepts: real human Spanish
sentences (Asterisk prompts) and non-command words, which must be rejected. Latency: streaming
in 20 ms chunks, time spent in the feed() call that returns the decision (compute after the
endpointer's trailing-silence window, which is reported separately). Baseline in the same run:
threshold 0 (rejection off). Run: .venv/bin/python -m bench.bench_speech
"""

from __future__ import annotations

import glob
import os
import resource
import time
from pathlib import Path

import numpy as np

from audio_lessons.speech import COMMAND_WORDS, audio, espeak
from audio_lessons.speech.endpoint import END_SILENCE_S

MODEL = Path(os.environ.get("PALLAY_TEST_SPHINX_MODEL")
             or Path(__file__).resolve().parents[2] / "shared/models/pocketsphinx-voxforge-es-0.1.1")
VOICES = (("roa/es-419", 150), ("roa/es", 130), ("roa/es+f2", 170))
OTHER_WORDS = ("casa", "piedra", "trabajo", "hola", "gracias", "mina", "agua", "mujer",
               "camino", "noche")
THRESHOLDS = (0.0, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7)


def clips(rate: int) -> tuple[list, list]:
    """(command trials [(word, snr, clip)], non-command clips)."""
    commands, others = [], []
    for i, (voice, speed) in enumerate(VOICES):
        for w in COMMAND_WORDS:
            clean = espeak.speak(w, voice, speed, rate)
            for snr in (20, 10):
                commands.append((w, snr, audio.add_noise(clean, snr, seed=i)))
        for w in OTHER_WORDS[:5] if i else OTHER_WORDS:
            others.append(audio.add_noise(espeak.speak(w, voice, speed, rate), 20, seed=i))
    for f in sorted(glob.glob("/usr/share/asterisk/sounds/es/vm-*.wav"))[:40]:
        samples, r = audio.read_wav(f)
        others.append(audio.resample(samples, r, rate))
    return commands, others


def run(rec, rate: int) -> dict:
    commands, others = clips(rate)
    t0, secs = time.perf_counter(), 0.0
    results = []
    for w, snr, clip in commands:
        results.append((w, snr, rec.recognise(clip, rate, COMMAND_WORDS)))
        secs += clip.size / rate
    other_heard = [rec.recognise(c, rate, COMMAND_WORDS) for c in others]
    secs += sum(c.size for c in others) / rate
    rtf = (time.perf_counter() - t0) / secs
    latencies = []
    for w, snr, clip in commands[::4]:
        tail = audio.add_noise(np.concatenate([clip, np.zeros(rate, np.int16)]), 30)
        stream = rec.stream(rate, COMMAND_WORDS)
        for start in range(0, tail.size, rate // 50):
            t = time.perf_counter()
            heard = stream.feed(tail[start:start + rate // 50])
            if heard is not None:
                latencies.append(time.perf_counter() - t)
                break
    return {"results": results, "others": other_heard, "rtf": rtf, "lat": latencies}


def rates_at(data: dict, th: float) -> tuple[float, float, float]:
    res = data["results"]

    def acc(snr):
        trials = [h for w, s, h in res if s == snr]
        return sum(h.text == w and h.confidence >= th and h.reason in ("", "low-confidence")
                   for (w, s, h) in res if s == snr) / len(trials)

    fa = sum(h.text is not None and h.confidence >= th and h.reason in ("", "low-confidence")
             for h in data["others"]) / len(data["others"])
    return acc(20), acc(10), fa


def main() -> None:
    from audio_lessons.speech.sphinx import SphinxRecognizer

    if not (MODEL / "etc").is_dir() or not espeak.available():
        raise SystemExit(f"needs the PocketSphinx model at {MODEL} and espeak-ng")
    rec = SphinxRecognizer(MODEL, threshold=0.0)
    runs = {rate: run(rec, rate) for rate in (8000, 16000)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_cmd = len(runs[8000]["results"]) // 2
    n_other = len(runs[8000]["others"])
    print(f"PocketSphinx voxforge-es, {len(COMMAND_WORDS)} command words, {n_cmd} trials per "
          f"rate and noise level, {n_other} non-command clips (40 human sentences + words)")
    print("targets: acc@20dB >= 95%, acc@10dB >= 85%, false-accept <= 5%, decision < 150 ms")
    print(f"{'rate':>5} {'threshold':>9} {'acc@20dB':>9} {'acc@10dB':>9} {'false-acc':>9}")
    for rate, data in runs.items():
        for th in THRESHOLDS:
            a20, a10, fa = rates_at(data, th)
            label = "off" if th == 0 else f"{th:.2f}"
            print(f"{rate:>5} {label:>9} {a20:>8.0%} {a10:>9.0%} {fa:>9.0%}")
    print(f"{'rate':>5} {'RTF':>7} {'decide p50':>11} {'decide max':>11}  (+{END_SILENCE_S * 1000:.0f}"
          " ms trailing-silence window of the endpointer)")
    for rate, data in runs.items():
        lat = np.array(data["lat"]) * 1000
        print(f"{rate:>5} {data['rtf']:>7.4f} {np.median(lat):>9.1f}ms {lat.max():>9.1f}ms")
    print(f"peak memory (RSS, whole process incl. espeak audio): {peak:.0f} MB")


if __name__ == "__main__":
    main()
