"""Upload preparation: media.prepare() on a 10-minute MP3 vs one plain ffmpeg command doing the same.

The baseline decodes, trims silence at both ends (silenceremove + areverse, the usual ffmpeg idiom),
applies a fixed gain and writes an 8 kHz and a kiosk-rate mono WAV in one invocation. prepare() also
probes, hashes, keeps the original, measures loudness, limits peaks and fsyncs every file.
Targets: prepare() within 1.3x of the baseline and at least 300x faster than real time.

Run: .venv/bin/python -m bench.bench_import
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from audio_lessons import media
from audio_lessons.config import MediaSettings
from bench import Figure, Unavailable

MINUTES = 10
RUNS = 3
SENTENCES = [
    "Buenos días, compañeras. Hoy vamos a hablar del polvo de la mina y de nuestros pulmones.",
    "Antes de entrar a la cancha, pónganse la mascarilla y revisen que cubra la nariz y la boca.",
    "Nunca coman ni tomen agua con las manos sucias: el mercurio entra al cuerpo por la boca.",
    "Si una compañera se siente mareada, llévenla a la sombra y avisen a la presidenta.",
]


def make_lesson(folder: Path) -> Path:
    """About 10 minutes of Spanish speech with pauses, 44.1 kHz mono MP3 at 128 kbit/s."""
    parts = []
    for i, text in enumerate(SENTENCES):
        part = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "roa/es", "-w", str(part), text], check=True)
        parts.append(part)
    joined = folder / "joined.wav"
    # sox: sentences with 0.8 s pauses, 2 s of silence before and after the whole lesson.
    subprocess.run(["sox", *map(str, parts), str(joined), "pad", "0", "0.8"], check=True)
    mp3 = folder / "lesson.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1",
                    "-i", str(joined), "-af", f"atrim=0:{MINUTES * 60 - 4},adelay=2s:all=1,apad=pad_dur=2",
                    "-ar", "44100", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "128k", str(mp3)],
                   check=True)
    return mp3


def plain_ffmpeg(src: Path, out: Path, settings: MediaSettings, both_ends: bool = True) -> None:
    trim = f"silenceremove=start_periods=1:start_threshold={settings.silence_dbfs}dB"
    chain = f"{trim},areverse,{trim},areverse" if both_ends else trim
    graph = (f"[0:a]aformat=channel_layouts=mono,{chain},volume=6dB,asplit[a][b];"
             f"[a]aresample={settings.phone_rate}[p];[b]aresample={settings.kiosk_rate}[k]")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src),
                    "-filter_complex", graph,
                    "-map", "[p]", "-c:a", "pcm_s16le", str(out / "phone.wav"),
                    "-map", "[k]", "-c:a", "pcm_s16le", str(out / "kiosk.wav")], check=True)


def best_of(fn, tmp: str, runs: int = RUNS) -> float:
    """Best wall time of ``fn(fresh_folder)``: the least disturbed by other work on the machine."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(dir=tmp) as out:
            started = time.perf_counter()
            fn(Path(out))
            times.append(time.perf_counter() - started)
    return min(times)


def main() -> list[Figure]:
    missing = [p for p in ("espeak-ng", "sox", "ffmpeg", "ffprobe") if shutil.which(p) is None]
    if missing:
        raise Unavailable(f"{', '.join(missing)} not installed (make install-test installs them)")
    settings = MediaSettings()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        src = make_lesson(Path(tmp))
        audio_s = float(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             str(src)], capture_output=True, text=True, check=True).stdout)
        print(f"source: {audio_s / 60:.1f} min MP3, 44.1 kHz mono 128 kbit/s, espeak-ng speech "
              f"(made in {time.perf_counter() - started:.1f} s); best of {RUNS}, 2-core machine")
        # Warm the imports (scipy, soxr) once, as a running admin process would have them.
        warm = Path(tmp) / "warm"
        media.prepare(src, warm, settings)
        shutil.rmtree(warm)
        rows = [
            ("ffmpeg decode only (floor)", best_of(lambda out: subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-i", str(src), "-f", "null", "-"],
                check=True), tmp)),
            ("plain ffmpeg, lead trim only", best_of(lambda out: plain_ffmpeg(
                src, out, settings, both_ends=False), tmp)),
            ("plain ffmpeg (baseline)", best_of(lambda out: plain_ffmpeg(src, out, settings), tmp)),
            ("media.prepare()", best_of(lambda out: media.prepare(src, out, settings), tmp)),
        ]
    base = rows[2][1]
    print(f"{'method':<32}{'seconds':>9}{'vs baseline':>13}{'x real time':>13}")
    for name, seconds in rows:
        print(f"{name:<32}{seconds:>9.2f}{seconds / base:>12.2f}x{audio_s / seconds:>12.0f}x")
    ours = rows[3][1]
    print(f"targets: <= 1.30x baseline -> {ours / base:.2f}x "
          f"({'met' if ours / base <= 1.3 else 'MISSED'}); >= 300x real time -> "
          f"{audio_s / ours:.0f}x ({'met' if audio_s / ours >= 300 else 'MISSED'})")
    return [Figure("media.prepare() / plain ffmpeg", f"{ours / base:.2f}x", "<= 1.30x",
                   ours / base <= 1.3),
            Figure("media.prepare() speed", f"{audio_s / ours:.0f}x real time", ">= 300x",
                   audio_s / ours >= 300)]


if __name__ == "__main__":
    main()
