"""Media preparation with real encoders (ffmpeg, sox, espeak-ng) and real hostile files."""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import time
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from audio_lessons import loudness, media, store
from audio_lessons.config import MediaSettings
from audio_lessons.errors import MediaError
from tests.conftest import require_program

SETTINGS = MediaSettings()
LEAD_S, TAIL_S = 1.0, 1.5  # silence around the speech in every generated upload
SPEECH = ("Buenos días, compañeras. Hoy aprendemos a cuidar los pulmones del polvo de la mina: "
          "usen siempre la mascarilla.")


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def ffmpeg(*args: str) -> None:
    run("ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    """Spoken Spanish, quiet (about -31 LUFS), with silence around it, in every format phones make."""
    for program in ("espeak-ng", "ffmpeg", "ffprobe", "sox"):
        require_program(program)
    d = tmp_path_factory.mktemp("sources")
    run("espeak-ng", "-v", "roa/es", "-w", str(d / "speech.wav"), SPEECH)
    with wave.open(str(d / "speech.wav")) as w:
        speech_s = w.getnframes() / w.getframerate()
    wav = d / "src.wav"
    run("sox", str(d / "speech.wav"), str(wav), "gain", "-10", "pad", str(LEAD_S), str(TAIL_S))
    files = {"wav": d / "stereo44k.wav"}
    ffmpeg("-i", str(wav), "-ac", "2", "-ar", "44100", str(files["wav"]))
    for name, codec in (("mp3", ["libmp3lame", "-b:a", "64k"]), ("m4a", ["aac", "-b:a", "64k"]),
                        ("ogg", ["libopus", "-b:a", "24k"]), ("webm", ["libopus"]),
                        ("flac", ["flac"])):
        files[name] = d / f"up.{name}"
        ffmpeg("-i", str(wav), "-c:a", *codec, str(files[name]))
    files["amr"] = d / "up.amr"  # sox's encoder uses DTX in pauses, like feature phones
    run("sox", str(wav), "-r", "8000", "-c", "1", "-t", "amr-nb", str(files["amr"]))
    files["3gp"] = d / "up.3gp"
    ffmpeg("-i", str(files["amr"]), "-c", "copy", str(files["3gp"]))
    cover = d / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1", str(cover))
    files["mp3+cover"] = d / "cover.mp3"
    ffmpeg("-i", str(files["mp3"]), "-i", str(cover), "-map", "0", "-map", "1", "-c", "copy",
           "-id3v2_version", "3", "-disposition:v", "attached_pic", str(files["mp3+cover"]))
    return {"files": files, "speech_s": speech_s, "dir": d}


def listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((p.name, p.stat().st_size) for p in folder.iterdir()) if folder.exists() else []


def wav_info(path: Path) -> tuple[int, int, int, np.ndarray]:
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), samples


def ebur128(path: Path) -> float:
    """Integrated loudness measured by ffmpeg's own EBU R128 meter, not by our code."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", out)[-1])


EXPECTED_FORMAT = {"wav": "pcm_s16le/wav", "mp3": "mp3/mp3", "m4a": "aac/m4a", "ogg": "opus/ogg",
                   "webm": "opus/webm", "flac": "flac/flac", "amr": "amr_nb/amr",
                   "3gp": "amr_nb/3gp", "mp3+cover": "mp3/mp3"}


@pytest.mark.parametrize("kind", list(EXPECTED_FORMAT))
def test_every_phone_format_becomes_phone_and_kiosk_variants(sources, kind, tmp_path):
    src = sources["files"][kind]
    prepared = media.prepare(src, tmp_path, SETTINGS, original_name=f"leccion.{kind}")

    data = src.read_bytes()
    assert prepared.hash == hashlib.sha256(data).hexdigest()[:32]
    assert prepared.source_format == EXPECTED_FORMAT[kind]
    original = media.variant_path(tmp_path, prepared.hash, "orig")
    assert original.name == f"{prepared.hash}.orig.{prepared.original_ext}"
    assert original.read_bytes() == data
    # Silence trimmed: the speech alone, not the 2.5 s of silence around it.
    assert abs(prepared.duration_ms / 1000 - sources["speech_s"]) < 0.5, prepared
    assert -36 < prepared.loudness_lufs < -26  # the upload was quiet
    for variant, rate in (("phone", 8000), ("kiosk", SETTINGS.kiosk_rate)):
        path = media.variant_path(tmp_path, prepared.hash, variant)
        got_rate, channels, width, samples = wav_info(path)
        assert (got_rate, channels, width) == (rate, 1, 2)
        assert abs(len(samples) / rate * 1000 - prepared.duration_ms) < 30
        assert abs(ebur128(path) - SETTINGS.target_lufs) < 1.0, variant
        peak_dbfs = 20 * np.log10(np.abs(samples.astype(np.int32)).max() / 32768)
        assert peak_dbfs <= SETTINGS.peak_dbfs + 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{prepared.hash}.json", original.name, f"{prepared.hash}.phone.wav",
         f"{prepared.hash}.kiosk.wav"])


def test_amr_pauses_are_kept_not_dropped(sources, tmp_path):
    """ffmpeg's AMR decoder drops DTX pause frames; ours must keep the recording's real length."""
    amr = media.prepare(sources["files"]["amr"], tmp_path, SETTINGS)
    flac = media.prepare(sources["files"]["flac"], tmp_path, SETTINGS)
    assert abs(amr.duration_ms - flac.duration_ms) < 200


def test_preparing_the_same_bytes_again_is_a_no_op(sources, tmp_path):
    first = media.prepare(sources["files"]["ogg"], tmp_path, SETTINGS, "nota de voz.ogg")
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = media.prepare(sources["files"]["ogg"], tmp_path, SETTINGS, "otro nombre.opus")
    assert again == first
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_hostile_names_never_choose_where_files_land(sources, tmp_path):
    unicode_src = sources["dir"] / "canción ñandú 🎵.ogg"
    unicode_src.write_bytes(sources["files"]["ogg"].read_bytes())
    media_dir = tmp_path / "media"
    names_before = sorted(p.name for p in tmp_path.iterdir())
    for src, name in ((sources["files"]["mp3"], "../../etc/passwd.mp3"),
                      (unicode_src, unicode_src.name), (sources["files"]["flac"], "a\\..\\b\x00.flac")):
        media.prepare(src, media_dir, SETTINGS, original_name=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names_before, "media"])
    names = [p.name for p in media_dir.iterdir()]
    assert len(names) == 12
    assert all(re.fullmatch(r"[0-9a-f]{32}\.(json|phone\.wav|kiosk\.wav|orig\.\w+)", n) for n in names)
    assert media.display_name("../../etc/passwd.mp3") == "passwd.mp3"
    assert media.display_name("a\\..\\b\x00.flac") == "b.flac"


def test_register_upserts_the_media_row(sources, tmp_path):
    db = store.connect(tmp_path / "pallay.db")
    prepared = media.prepare(sources["files"]["m4a"], tmp_path / "media", SETTINGS)
    media.register(db, prepared, "../Lección 1 (María).m4a")
    first = db.execute("SELECT * FROM media").fetchall()
    media.register(db, prepared, None)
    rows = db.execute("SELECT hash, duration_ms, original_name, original_ext, source_format,"
                      " loudness_lufs, created_at FROM media").fetchall()
    assert len(rows) == 1 and rows == [tuple(first[0])]
    assert rows[0][:6] == (prepared.hash, prepared.duration_ms, "Lección 1 (María).m4a", "m4a",
                           "aac/m4a", prepared.loudness_lufs)


def test_unused_media_is_discarded_with_its_files_and_used_media_is_kept(sources, tmp_path):
    from audio_lessons import catalog

    db = store.connect(tmp_path / "pallay.db")
    media_dir = tmp_path / "media"
    used, unused = (media.prepare(sources["files"][kind], media_dir, SETTINGS) for kind in ("m4a", "ogg"))
    for prepared in (used, unused):
        media.register(db, prepared, "nota.ogg")
    lesson = catalog.add_lesson(db, slug="polvo", title="el polvo")
    catalog.set_recording(db, lesson, "es", used.hash)
    assert media.discard_unused(db, media_dir, unused.hash)
    assert not media.discard_unused(db, media_dir, used.hash)
    assert {p.name.split(".")[0] for p in media_dir.iterdir()} == {used.hash}
    assert [r[0] for r in db.execute("SELECT hash FROM media")] == [used.hash]


def test_read_pcm_gives_int16_mono_at_any_rate(sources, tmp_path):
    prepared = media.prepare(sources["files"]["mp3"], tmp_path, SETTINGS)
    phone = media.variant_path(tmp_path, prepared.hash, "phone")
    pcm = media.read_pcm(phone, 16000)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert abs(len(pcm) / 16000 * 1000 - prepared.duration_ms) < 30
    amr = media.read_pcm(sources["files"]["amr"], 8000)
    assert abs(len(amr) / 8000 - (sources["speech_s"] + LEAD_S + TAIL_S)) < 0.3
    with pytest.raises(MediaError):
        media.read_pcm(tmp_path / "no-such.wav", 8000)


def test_variant_path_refuses_anything_but_a_hash():
    with pytest.raises(ValueError):
        media.variant_path(Path("m"), "../../etc/passwd", "phone")
    with pytest.raises(ValueError):
        media.variant_path(Path("m"), "0" * 32, "../x")
    assert media.variant_path(Path("m"), "0" * 32, "phone") == Path("m") / f"{'0' * 32}.phone.wav"


# --- hostile uploads: each one a Spanish MediaError and the media folder exactly as before -------

def make_hostile(kind: str, d: Path, sources: dict) -> Path:
    files = sources["files"]
    if kind == "text named .mp3":
        (d / "x.mp3").write_text("Esto no es audio.\n" * 200, encoding="utf-8")
        return d / "x.mp3"
    if kind == "playlist named .mp3":  # would make a permissive ffmpeg read a local file
        (d / "x.mp3").write_text("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
        return d / "x.mp3"
    if kind == "video":
        ffmpeg("-f", "lavfi", "-i", "testsrc=d=3:s=160x120", "-f", "lavfi", "-i", "sine=d=3",
               "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(d / "x.mp4"))
        return d / "x.mp4"
    if kind == "zero bytes":
        (d / "x.ogg").write_bytes(b"")
        return d / "x.ogg"
    if kind == "three hours":  # a real 3 h MP3: one minute of 8 kbit/s frames, repeated
        ffmpeg("-f", "lavfi", "-i", "sine=f=300:d=60:sample_rate=8000", "-c:a", "libmp3lame",
               "-b:a", "8k", "-write_xing", "0", "-id3v2_version", "0", str(d / "minute.mp3"))
        (d / "x.mp3").write_bytes((d / "minute.mp3").read_bytes() * 180)
        return d / "x.mp3"
    if kind.startswith("truncated"):
        fmt = kind.split()[-1]
        data = files[fmt].read_bytes()
        (d / f"x.{fmt}").write_bytes(data[: len(data) // 2])
        return d / f"x.{fmt}"
    if kind.startswith("garbage in the middle"):
        fmt = kind.split()[-1]
        data = bytearray(files[fmt].read_bytes())
        middle = len(data) // 2
        data[middle:middle + 2000] = np.random.default_rng(7).bytes(2000)
        (d / f"x.{fmt}").write_bytes(bytes(data))
        return d / f"x.{fmt}"
    if kind == "silent":
        ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "10", "-c:a", "libopus",
               str(d / "x.ogg"))
        return d / "x.ogg"
    if kind == "too short":
        ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=0.2", "-af", "apad=pad_dur=2",
               str(d / "x.wav"))
        return d / "x.wav"
    raise AssertionError(kind)


HOSTILE = {
    "text named .mp3": "no es un audio", "playlist named .mp3": "no es un audio",
    "video": "video", "zero bytes": "vacío", "three hours": "demasiado larga",
    "truncated mp3": "dañado", "truncated flac": "dañado", "truncated webm": "dañado",
    "garbage in the middle mp3": "dañado", "garbage in the middle amr": "dañado",
    "silent": "silencio", "too short": "demasiado corta",
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_upload_is_refused_in_spanish_and_leaves_nothing(sources, kind, tmp_path, caplog):
    src = make_hostile(kind, tmp_path, sources)
    media_dir = tmp_path / "media"
    media.prepare(sources["files"]["flac"], media_dir, SETTINGS)  # a good lesson already there
    before = listing(media_dir)
    started = time.monotonic()
    with (caplog.at_level(logging.WARNING, logger="audio_lessons.media"),
          pytest.raises(MediaError) as err):
        media.prepare(src, media_dir, SETTINGS, original_name="../../etc/passwd.mp3")
    assert time.monotonic() - started < 5  # the 3-hour file is refused without decoding it
    assert HOSTILE[kind] in str(err.value)
    assert listing(media_dir) == before
    [logged] = [r.getMessage() for r in caplog.records if "media rejected" in r.getMessage()]
    assert ".tmp-" not in logged and str(tmp_path) not in logged, logged  # the upload's own name


def test_a_cut_mp3_is_refused_wherever_the_cut_falls(sources, tmp_path):
    """A cut on a frame boundary decodes without any error: the Xing/Info frame count catches it."""
    data = sources["files"]["mp3"].read_bytes()
    for i, fraction in enumerate((0.3, 0.5, 0.7)):
        cut = tmp_path / f"cut{i}.mp3"
        cut.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(MediaError, match="dañado"):
            media.prepare(cut, tmp_path / "media", SETTINGS)
    assert listing(tmp_path / "media") == []


def test_a_whole_mp3_without_a_frame_count_is_accepted(sources, tmp_path):
    """Old recorders write no Xing header: their length is estimated, so it must not be held against them."""
    src = tmp_path / "plain.mp3"
    ffmpeg("-i", str(sources["files"]["wav"]), "-c:a", "libmp3lame", "-b:a", "32k", "-write_xing", "0",
           str(src))
    prepared = media.prepare(src, tmp_path / "media", SETTINGS)
    assert prepared.source_format == "mp3/mp3"


def test_too_big_is_refused_before_reading(sources, tmp_path):
    with pytest.raises(MediaError, match="demasiado grande"):
        media.prepare(sources["files"]["wav"], tmp_path, replace(SETTINGS, max_bytes=10_000))
    assert listing(tmp_path) == []


def test_decoding_is_capped_when_the_file_hides_its_length(tmp_path, caplog):
    """Browser recordings (WebM from MediaRecorder) carry no duration: the decode itself stops."""
    require_program("ffmpeg")
    src = tmp_path / "live.webm"
    with open(src, "wb") as out:  # written to a pipe, as a browser streams it: no duration
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=300:d=150",
                        "-c:a", "libopus", "-b:a", "12k", "-f", "webm", "pipe:1"],
                       stdout=out, check=True)
    settings = replace(SETTINGS, max_seconds=10)
    with (caplog.at_level(logging.WARNING, logger="audio_lessons.media"),
          pytest.raises(MediaError, match="demasiado larga")):
        media.prepare(src, tmp_path / "media", settings)
    assert "decoded more than 70 s" in caplog.text
    assert listing(tmp_path / "media") == []


def test_a_failure_while_renaming_leaves_no_partial_lesson(sources, tmp_path, monkeypatch):
    real_replace = media.os.replace
    calls = []

    def failing_replace(a, b):
        calls.append(b)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_replace(a, b)

    monkeypatch.setattr(media.os, "replace", failing_replace)
    with pytest.raises(OSError):
        media.prepare(sources["files"]["mp3"], tmp_path, SETTINGS)
    assert listing(tmp_path) == []
    monkeypatch.setattr(media.os, "replace", real_replace)
    media.prepare(sources["files"]["mp3"], tmp_path, SETTINGS)
    assert len(listing(tmp_path)) == 4


def test_loud_peaky_audio_is_limited_not_clipped(tmp_path):
    """Clicks far above the speech level: the limiter keeps peaks at the ceiling without clipping."""
    rate = 22050
    t = np.arange(rate * 4) / rate
    y = 0.02 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    y[::rate // 2] = 0.9  # a click every half second
    src = tmp_path / "clicks.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((y * 32767).astype("<i2").tobytes())
    prepared = media.prepare(src, tmp_path / "media", SETTINGS)
    rate_k, _, _, samples = wav_info(media.variant_path(tmp_path / "media", prepared.hash, "kiosk"))
    assert np.abs(samples.astype(np.int32)).max() <= 32768 * 10 ** (SETTINGS.peak_dbfs / 20) + 1
    assert np.sum(np.abs(samples.astype(np.int32)) >= 32767) == 0
    # Limiting is capped (6 dB), so such a file ends up a little quieter than the target.
    assert SETTINGS.target_lufs - 12 < loudness.integrated_loudness(samples / 32768.0, rate_k) \
        <= SETTINGS.target_lufs + 0.5


def test_our_loudness_meter_agrees_with_ffmpeg(sources):
    src = sources["files"]["flac"]
    pcm = media.read_pcm(src, 48000).astype(np.float32) / 32768
    assert abs(loudness.integrated_loudness(pcm, 48000) - ebur128(src)) < 0.3
