"""A spoken answer on the real Asterisk: from the end of her word to pallay having it, and to the
next prompt she hears, streamed (AudioSocket + the core's endpointer) against RECORD FILE.

Her side is pure dialplan (tests/test_line_capture.py): after the listen tone she says one of
Asterisk's recorded Spanish digits (a woman's voice) in a -50 dBFS line-noise floor, and records
what she says and hears. Just before her word she sends a UserEvent, which Asterisk stamps
(``timestampevents``); her word ends a known time into the file, so its end is known by the wall
clock. pallay's side is the line's own ``AgiMedia.capture``, then a reply tone:

- word end -> capture returned: pallay's clock when ``capture`` returned, minus that end;
- word end -> next prompt heard: in her own recording, from her word's end to the reply's first
  sample (one timeline, no clocks);
- words right: the captured utterances, recognised afterwards by PocketSphinx (digits, sí, no),
  when the test model is there: the streamed answer must not cost accuracy;
- event-loop stall: the worst lateness of a 10 ms ticker on pallay's loop during the calls.

Callers alternate stream, record, stream, ... in one run (the machine's other load hits both).
Run: ``.venv/bin/python -m bench bench_capture`` (root: it starts the test Asterisk in its chroot).
``PALLAY_BENCH_REPEAT=2`` passes over the ten digits.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from audio_lessons.driver import Utterance
from bench import Figure, Unavailable
from bench.asterisk import bench_asterisk
from tests.asterisk import AgiTestServer, Ami, start, stop
from tests.heard import RATE
from tests.test_line_capture import CALLER, WORDS, Probe, call, her_word, reply_delay, write_wav

REPEAT = int(os.environ.get("PALLAY_BENCH_REPEAT", "1"))
DIGITS = ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"]
GRAMMAR = [*DIGITS, "sí", "no"]
WAIT_S = 0.8  # after answer: the listen tone has played


class Ticker:
    """How late a 10 ms sleep wakes up on a loop: the worst stall anything on it caused."""

    def __init__(self):
        self.worst = 0.0
        self._task = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, loop.time() - before - 0.01)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        self._task.cancel()


def one_call(ami, ast, probe: Probe, folder: Path, path: str, digit: int, serial: int,
             ticker: Ticker) -> dict:
    word, end_s = her_word(folder, digit)
    ticker.worst = 0.0
    rec = call(ami, ast, f"bench-{path}-{serial}", wait=WAIT_S, say=word, hold=3.0)
    said = ami.wait_event(lambda e: e.get("UserEvent") == "CaptureSay" and e.get("Rec") == rec, 30)
    got = probe.results.get(timeout=30)
    stall = ticker.worst
    if not isinstance(got, Utterance):
        return {"path": path, "digit": digit, "failed": repr(got)}
    returned = probe.returned[-1] - (float(said["Timestamp"]) + end_s)
    ami.wait_recording(f"{rec}.wav", 30)
    heard = reply_delay(ast, rec, word, end_s, folder)
    return {"path": path, "digit": digit, "returned": returned, "heard": heard,
            "utterance": got, "stall": stall, "failed": ""}


def recognise(rows: list[dict]) -> str:
    """Words right per path with PocketSphinx, or why they were not counted."""
    from tests.conftest import SPHINX_MODEL

    if not (SPHINX_MODEL / "etc").is_dir():
        return f"no PocketSphinx test model at {SPHINX_MODEL}"
    from audio_lessons.speech.sphinx import SphinxRecognizer

    recognizer = SphinxRecognizer(SPHINX_MODEL)
    for row in rows:
        if row["failed"]:
            continue
        heard = recognizer.recognise(row["utterance"].samples, row["utterance"].rate, GRAMMAR)
        row["right"] = heard.accepted and heard.text == DIGITS[row["digit"]]
        row["wrong"] = heard.accepted and not row["right"]
    return ""


def ms(values: list[float], how) -> str:
    return f"{how(values) * 1000:.0f} ms" if values else "-"


def report(rows: list[dict], no_words: str) -> list[Figure]:
    paths = {p: [r for r in rows if r["path"] == p and not r["failed"]] for p in ("stream", "record")}
    print(f"\nher word's end -> ..., {REPEAT * 10} callers per path, alternating in one run "
          "(median / max)")
    print("| path | -> capture returned | -> next prompt heard | answer length | words right "
          "(wrong accepted) | loop stall | failed |")
    print("|---|---|---|---|---|---|---|")
    for path, good in paths.items():
        returned, heard = [r["returned"] for r in good], [r["heard"] for r in good]
        length = [len(r["utterance"].samples) / RATE for r in good]
        words = (f"{sum(r['right'] for r in good)}/{len(good)} ({sum(r['wrong'] for r in good)})"
                 if not no_words else "-")
        failed = sum(1 for r in rows if r["path"] == path and r["failed"])
        stalls = [r["stall"] for r in good]
        print(f"| {path} | {ms(returned, statistics.median)} / {ms(returned, max)} | "
              f"{ms(heard, statistics.median)} / {ms(heard, max)} | "
              f"{statistics.median(length) if length else 0:.2f} s | {words} | "
              f"{ms(stalls, statistics.median)} / {ms(stalls, max)} | {failed} |")
    if no_words:
        print(f"words right not counted: {no_words}")
    print("loop stall: the worst lateness of a 10 ms sleep on pallay's event loop during a call "
          "(the first streamed call imports pocketsphinx, in a thread)")
    for r in rows:
        if r["failed"]:
            print(f"  failed ({r['path']}, digit {r['digit']}): {r['failed'][:160]}")
    stream, record = ([r[k] for r in paths[p]] for p, k in (("stream", "returned"),
                                                            ("record", "returned")))
    if not stream or not record:
        raise RuntimeError("a path never returned an answer: see the failures above")
    ratio = statistics.median(stream) / statistics.median(record)
    worst_heard = max(r["heard"] for r in paths["stream"])
    stall = statistics.median(r["stall"] for r in paths["stream"])
    return [Figure("word end -> answer captured, stream / record (median)", f"{ratio:.2f}x",
                   "<= 0.5x", ratio <= 0.5),
            Figure("word end -> answer captured, streamed (median)",
                   ms(stream, statistics.median), "<= 500 ms", statistics.median(stream) <= 0.5),
            Figure("word end -> next prompt heard, streamed (worst)", f"{worst_heard * 1000:.0f} ms",
                   "<= 600 ms", worst_heard <= 0.6),
            Figure("event-loop stall per streamed call (median of the worst)",
                   f"{stall * 1000:.1f} ms", "<= 20 ms", stall <= 0.02)]


def main() -> list[Figure]:
    if not WORDS.is_dir():
        raise Unavailable(f"no recorded Spanish digits at {WORDS}: make install-test installs them")
    ast = bench_asterisk()
    root = Path(tempfile.mkdtemp(prefix="pallay-bench-capture-"))
    agi = AgiTestServer(ast.agi_port)
    try:
        t = np.arange(int(0.4 * RATE)) / RATE
        write_wav(root / "reply.wav", 12_000 * np.sin(2 * np.pi * 700 * t))
        manager = ast.host_path(f"{ast.base_dir}/etc/manager.conf")
        manager.write_text(manager.read_text().replace("[general]\n",
                                                       "[general]\ntimestampevents = yes\n", 1))
        start(ast)
        ast.share(root)
        ast.add_dialplan("capture", CALLER % {"port": ast.agi_port})
        agi.start()
        ticker = Ticker()
        agi.run(ticker.start())
        ami = Ami(ast.ami_port, "pallay-test", ast.ami_secret)
        probes = {"stream": Probe(agi, root, streaming=True), "record": Probe(agi, root, False)}
        rows = []
        for serial in range(REPEAT * 10):
            for path, probe in probes.items():
                agi.routes["capture"] = probe
                rows.append(one_call(ami, ast, probe, root, path, serial % 10, serial,
                                     ticker))
        agi.run(ticker.stop())
        ami.close()
        no_words = recognise(rows)
        return report(rows, no_words)
    finally:
        agi.close()
        stop(ast)
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
