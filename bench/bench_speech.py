"""Voice-command benchmark: PocketSphinx (Spanish) at 8 and 16 kHz, rejection on and off.

Accuracy: command words spoken by espeak-ng (3 voice/speed settings) with a 20 dB and a 10 dB
white-noise floor; "correct" means accepted AND right. False accepts: real human Spanish
sentences (Asterisk prompts) and non-command words, which must be rejected. Latency: streaming
in 20 ms chunks, time spent in the feed() call that returns the decision (compute after the
endpointer's trailing-silence window, which is reported separately). Baseline in the same run:
threshold 0 (rejection off), and the previous decoder settings (PocketSphinx defaults).
Human rows: the Asterisk woman's voice saying the digits 0-9 (at 8 kHz and upsampled to 16 kHz),
and single human words that are not commands (numbers 10-90, days, months: every other file,
the half not used to tune the decoder). The decoder settings were tuned on other espeak voices
and the other half of those words, never on the clips reported here.
Run: .venv/bin/python -m bench.bench_speech
"""

from __future__ import annotations

import glob
import resource
import time
from pathlib import Path

import numpy as np

from audio_lessons.speech import COMMAND_WORDS, DIGIT_WORDS, audio, espeak
from audio_lessons.speech.endpoint import END_SILENCE_S
from audio_lessons.speech.recognizer import DEFAULT_THRESHOLD
from bench import Figure, Unavailable
from tests.conftest import SPHINX_MISSING
from tests.conftest import SPHINX_MODEL as MODEL

VOICES = (("roa/es-419", 150), ("roa/es", 130), ("roa/es+f2", 170))
OTHER_WORDS = ("casa", "piedra", "trabajo", "hola", "gracias", "mina", "agua", "mujer",
               "camino", "noche")
THRESHOLDS = (0.0, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7)
SOUNDS = Path("/usr/share/asterisk/sounds/es")


def human_words() -> list[Path]:
    """Single human words that are not commands (held-out half: odd positions)."""
    d = SOUNDS / "digits"
    files = sorted([*d.glob("[12][0-9].wav"), *d.glob("[3-9]0.wav"), *d.glob("day-*.wav"),
                    *d.glob("mon-*.wav"), SOUNDS / "hours.wav", SOUNDS / "minutes.wav",
                    SOUNDS / "seconds.wav"])
    return [f for f in files if f.is_file()][1::2]


def human(rec, rate: int) -> dict:
    """Human digits (word, Heard) and human non-command words (Heard)."""
    digits = []
    for word, key in DIGIT_WORDS.items():
        samples, r = audio.read_wav(SOUNDS / "digits" / f"{key}.wav")
        digits.append((word, rec.recognise(audio.resample(samples, r, rate), rate, COMMAND_WORDS)))
    others = []
    for f in human_words():
        samples, r = audio.read_wav(f)
        others.append(rec.recognise(audio.resample(samples, r, rate), rate, COMMAND_WORDS))
    return {"digits": digits, "others": others}


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


def heard(h, th: float) -> bool:
    """Accepted at threshold ``th`` (th 0: everything but silence and out-of-grammar)."""
    return h.text is not None and h.confidence >= th and h.reason in ("", "low-confidence")


def rates_at(data: dict, th: float) -> tuple[float, float, float]:
    res = data["results"]

    def acc(snr):
        trials = [h for w, s, h in res if s == snr]
        return sum(h.text == w and h.confidence >= th and h.reason in ("", "low-confidence")
                   for (w, s, h) in res if s == snr) / len(trials)

    fa = sum(h.text is not None and h.confidence >= th and h.reason in ("", "low-confidence")
             for h in data["others"]) / len(data["others"])
    return acc(20), acc(10), fa


def main() -> list[Figure]:
    from audio_lessons.speech.sphinx import SphinxRecognizer

    if not (MODEL / "etc").is_dir():
        raise Unavailable(SPHINX_MISSING)
    if not espeak.available() or not SOUNDS.is_dir():
        raise Unavailable("needs espeak-ng and asterisk-core-sounds-es-wav (make install-test)")
    recs = {"tuned": SphinxRecognizer(MODEL, threshold=0.0),
            "previous": SphinxRecognizer(MODEL, threshold=0.0, options={})}
    recs["previous"].min_cover = 0.6  # the previous sentence-rejection rule
    runs = {(name, rate): run(rec, rate) for name, rec in recs.items() for rate in (8000, 16000)}
    people = {(name, rate): human(rec, rate) for name, rec in recs.items() for rate in (8000, 16000)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first = runs["tuned", 8000]
    n_cmd, n_other = len(first["results"]) // 2, len(first["others"])
    print(f"PocketSphinx voxforge-es, {len(COMMAND_WORDS)} command words, {n_cmd} trials per "
          f"rate and noise level, {n_other} non-command clips (40 human sentences + words)")
    print("targets: acc@20dB >= 95%, acc@10dB >= 85%, false-accept <= 5%, decision < 150 ms")
    print(f"{'decoder':>8} {'rate':>5} {'threshold':>9} {'acc@20dB':>9} {'acc@10dB':>9} "
          f"{'false-acc':>9} {'human digits':>12} {'human-word FA':>13}")
    for (name, rate), data in runs.items():
        hum = people[name, rate]
        for th in THRESHOLDS:
            a20, a10, fa = rates_at(data, th)
            right = sum(heard(h, th) and h.text == w for w, h in hum["digits"])
            hfa = sum(heard(h, th) for h in hum["others"])
            label = "off" if th == 0 else f"{th:.2f}"
            print(f"{name:>8} {rate:>5} {label:>9} {a20:>8.0%} {a10:>9.0%} {fa:>9.0%} "
                  f"{right:>9}/{len(hum['digits'])} {hfa:>10}/{len(hum['others'])}")
    print(f"{'decoder':>8} {'rate':>5} {'RTF':>7} {'decide p50':>11} {'decide max':>11}  "
          f"(+{END_SILENCE_S * 1000:.0f} ms trailing-silence window of the endpointer)")
    for (name, rate), data in runs.items():
        lat = np.array(data["lat"]) * 1000
        print(f"{name:>8} {rate:>5} {data['rtf']:>7.4f} {np.median(lat):>9.1f}ms "
              f"{lat.max():>9.1f}ms")
    print(f"peak memory (RSS, whole process incl. espeak audio, two recognisers): {peak:.0f} MB")
    return headline(runs["tuned", 8000], people["tuned", 8000])


def headline(data: dict, hum: dict) -> list[Figure]:
    """The tuned decoder at 8 kHz (the phone) at its default accept threshold."""
    th = DEFAULT_THRESHOLD
    a20, a10, fa = rates_at(data, th)
    right = sum(heard(h, th) and h.text == w for w, h in hum["digits"])
    p50 = float(np.median(np.array(data["lat"]) * 1000))
    at = f"8 kHz, threshold {th:.2f}"
    return [Figure(f"words right at 20 dB noise, {at}", f"{a20:.0%}", ">= 95%", a20 >= 0.95),
            Figure(f"words right at 10 dB noise, {at}", f"{a10:.0%}", ">= 85%", a10 >= 0.85),
            Figure(f"false accepts, {at}", f"{fa:.0%}", "<= 5%", fa <= 0.05),
            Figure(f"human digits right, {at}", f"{right}/{len(hum['digits'])}"),
            Figure("decision time (median)", f"{p50:.1f} ms", "< 150 ms", p50 < 150)]


if __name__ == "__main__":
    main()
