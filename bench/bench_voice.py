"""Voice commands on real human voices: each engine side by side in one run.

Test sets (tests/voices.py): two professional women's voices at telephone quality (Debian's
Asterisk prompts, Mexican and Colombian), one word per clip, and 40-odd sentences per voice that
are not commands; clean, and mixed with babble or white noise at 10 dB. Two vocabularies: the
34 words (digits, weekdays, months, hoy/mañana/ayer, no, mensaje) and the phone line's own main
menu grammar (digits, lesson keywords, menu words), where the human words outside it (weekdays,
months...) must be rejected too. Whisper's decision rule was set on the Mexican voice's clean
words; its second look (threshold, prior, encoded silence) was chosen on both voices, clean and
with babble, for the 34 words and the line's grammar; white noise was never used to set anything.

Each engine runs in its own process (memory is that process's peak RSS). Time: the decision
on a clip that ends at the end of her speech, i.e. from end of speech to decision once the
endpointer has seen her stop (its 0.3 s window is not included). Kiosk class: Whisper on one
core (``taskset -c 0``, one thread), the stand-in for a Raspberry Pi.
Vosk is not run: its Spanish model cannot be obtained on this machine.
Run: .venv/bin/python -m bench.bench_voice  (about 15 minutes)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np

from bench import Figure, Unavailable

CONDITIONS = ("clean", "babble10", "white10")
TARGETS = {"clean": 0.95, "babble10": 0.85}


def evaluate(engine: str, threads: int | None, conditions, limit: int | None) -> dict:
    """In this process: load ``engine``, decide every clip, return counts and times."""
    from audio_lessons.speech import open_recognizer
    from tests import models, voices

    if engine == "whisper":
        from audio_lessons.speech.whisper import WhisperRecognizer

        rec = WhisperRecognizer(models.whisper_model(), threads=threads)
    else:
        from tests.conftest import SPHINX_MODEL

        rec = open_recognizer("pocketsphinx", SPHINX_MODEL)
    grammars = {"34 words": voices.VOCABULARY, "line menu": voices.phone_grammar("main_menu")}
    out: dict = {"rows": [], "times": []}
    for condition in conditions:
        words = voices.words(condition)[:limit]
        sentences = voices.sentences(condition)[:limit]
        for name, grammar in grammars.items():
            row = {"condition": condition, "grammar": name, "right": 0, "wrong": 0,
                   "rejected": 0, "in_grammar": 0, "out_accepted": 0, "out": 0,
                   "sentences": len(sentences), "sentences_accepted": 0}
            for clip in words:
                started = time.perf_counter()
                heard = rec.recognise(clip.samples, clip.rate, grammar)
                out["times"].append(time.perf_counter() - started)
                if clip.word in grammar:
                    row["in_grammar"] += 1
                    key = ("right" if heard.text == clip.word else "wrong") if heard.accepted \
                        else "rejected"
                    row[key] += 1
                else:
                    row["out"] += 1
                    row["out_accepted"] += heard.accepted
            for clip in sentences:
                row["sentences_accepted"] += rec.recognise(clip.samples, clip.rate, grammar).accepted
            out["rows"].append(row)
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def child(engine: str, *, one_core: bool = False, conditions=CONDITIONS,
          limit: int | None = None) -> dict:
    cmd = [sys.executable, "-m", "bench.bench_voice", "--child", engine,
           json.dumps({"threads": 1 if one_core else None, "conditions": list(conditions),
                       "limit": limit})]
    if one_core:
        cmd = ["taskset", "-c", "0", *cmd]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{engine} run failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> list[Figure]:
    from tests import models, voices

    for voice in voices.VOICES:
        why = voices.missing(voice)
        if why:
            raise Unavailable(why)
    if not models.whisper_model().is_dir():
        raise Unavailable(models.WHISPER_MISSING)
    runs = {engine: child(engine) for engine in ("whisper", "pocketsphinx")}
    kiosk = child("whisper", one_core=True, conditions=("clean",), limit=20)
    print(f"{'engine':13} {'condition':9} {'grammar':10} {'right':>6} {'wrong':>6} {'rejected':>8} "
          f"{'out-of-grammar accepted':>24} {'sentences accepted':>19}")
    for engine, run in runs.items():
        for r in run["rows"]:
            n = max(1, r["in_grammar"])
            print(f"{engine:13} {r['condition']:9} {r['grammar']:10} {r['right'] / n:6.0%} "
                  f"{r['wrong'] / n:6.0%} {r['rejected'] / n:8.0%} "
                  f"{r['out_accepted']:>17}/{r['out']:<6} "
                  f"{r['sentences_accepted']:>12}/{r['sentences']:<6}")
    print(f"\n{'engine':22} {'decision p50':>12} {'p90':>8} {'peak RSS':>9}")
    for label, run in [*runs.items(), ("whisper, 1 core", kiosk)]:
        t = np.array(run["times"]) * 1000
        print(f"{label:22} {np.median(t):10.0f}ms {np.percentile(t, 90):6.0f}ms "
              f"{run['rss_mb']:7.0f}MB")
    return figures(runs, kiosk)


def figures(runs: dict, kiosk: dict) -> list[Figure]:
    out = []
    for engine, run in runs.items():
        for r in run["rows"]:
            n = max(1, r["in_grammar"])
            target = TARGETS.get(r["condition"])
            right = r["right"] / n
            out.append(Figure(f"{engine}, {r['grammar']}, {r['condition']}: accepted and right",
                              f"{right:.0%}", f">= {target:.0%}" if target else "",
                              None if target is None else right >= target))
            share = r["sentences_accepted"] / max(1, r["sentences"])
            out.append(Figure(f"{engine}, {r['grammar']}, {r['condition']}: sentences accepted",
                              f"{share:.1%}", "<= 2%", share <= 0.02))
        t = np.median(run["times"]) * 1000
        out.append(Figure(f"{engine}: end of speech -> decision (median)", f"{t:.0f} ms",
                          "< 1000 ms" if engine == "whisper" else "",
                          t < 1000 if engine == "whisper" else None))
        out.append(Figure(f"{engine}: peak memory", f"{run['rss_mb']:.0f} MB"))
    t = np.median(kiosk["times"]) * 1000
    out.append(Figure("whisper on one core (Pi stand-in): decision (median)", f"{t:.0f} ms"))
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        options = json.loads(sys.argv[3])
        print(json.dumps(evaluate(sys.argv[2], options["threads"], options["conditions"],
                                  options["limit"])))
    else:
        main()
