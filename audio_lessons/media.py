"""Media: turn any upload a phone makes into checked, loudness-normalised variants under a content hash.

Layout of the media folder (names come only from the hash, never from the upload's name)::

    <hash>.orig.<ext>   the uploaded bytes, ext of the format found by decoding
    <hash>.phone.wav    phone_rate mono 16-bit PCM (what Asterisk plays)
    <hash>.kiosk.wav    kiosk_rate mono 16-bit PCM
    <hash>.json         what prepare() learnt; written last, so its presence means "complete"

The file type is decided by ffprobe/ffmpeg with a whitelist of demuxers (a text playlist named .mp3
must never make ffmpeg open other files). Decoding happens once, to mono float32 through a pipe;
trimming, loudness (ITU-R BS.1770) and resampling (soxr) happen in numpy.
AMR is decoded by ``amr`` (libopencore keeps the comfort-noise frames ffmpeg drops); loudness is
measured and normalised by ``loudness``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import subprocess
import tempfile
import threading
import unicodedata
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from audio_lessons import amr, loudness, store
from audio_lessons.config import MediaSettings
from audio_lessons.errors import MediaError

log = logging.getLogger(__name__)

VARIANTS = ("phone", "kiosk")
# Demuxers ffmpeg may use on an upload: what phones, WhatsApp, browsers and recorders produce.
DEMUXERS = "wav,mp3,mov,mp4,m4a,3gp,3g2,mj2,ogg,matroska,webm,flac,amr,aac,aiff,caf"
HEADER_DURATION_FORMATS = ("wav", "flac", "mov", "matroska")  # duration is written, not estimated
MP3_FRAME_COUNT_TAGS = (b"Xing", b"Info", b"VBRI")  # an MP3 with one of these declares its length
IMAGE_CODECS = {"mjpeg", "png", "bmp", "gif", "webp", "tiff"}
SILENCE_ALLOWANCE_S = 60.0  # raw length may exceed max_seconds by this much of silence to trim
TRIM_PAD_S = 0.15  # keep a little quiet around the speech so soft consonants survive
FRAME_S = 0.010  # silence detection resolution
HASH_CHARS = 32
F_SETPIPE_SZ = 1031  # Linux fcntl, missing from Python's fcntl module before 3.10 on some builds
_HASH_RE = re.compile(rf"[0-9a-f]{{{HASH_CHARS}}}")


@dataclass(frozen=True)
class Prepared:
    hash: str
    duration_ms: int  # after trimming silence
    source_format: str  # "codec/container" as decoded, e.g. "opus/ogg"
    loudness_lufs: float  # integrated loudness of the upload (trimmed), before normalisation
    original_ext: str  # extension of media/<hash>.orig.<ext>


@dataclass(frozen=True)
class _Probe:
    container: str  # ffprobe format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str
    duration: float | None
    declared: bool = False  # duration read from the file, not estimated from its size


def prepare(src: Path, media_dir: Path, settings: MediaSettings,
            original_name: str | None = None) -> Prepared:
    """Check and convert one upload; raise MediaError (Spanish) if it cannot become a lesson.

    Files are keyed by content only: the same bytes again return the stored result, even if the
    settings changed since (delete the hash's files to redo them).
    """
    src, media_dir = Path(src), Path(media_dir)
    label = display_name(original_name) or src.name
    size = _size(src, label)
    if size == 0:
        raise _reject(label, "empty file", "El archivo está vacío (0 bytes). Vuelva a subir la grabación.")
    if size > settings.max_bytes:
        raise _reject(label, f"{size} bytes > max_bytes {settings.max_bytes}",
                      f"El archivo es demasiado grande ({size / 1e6:.0f} MB). "
                      f"El máximo es {settings.max_bytes / 1e6:.0f} MB.")
    media_dir.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        orig_tmp = _temp(media_dir, temps)
        digest = _copy_and_hash(src, orig_tmp, settings.max_bytes, label)
        done = _load_meta(media_dir, digest)
        if done is not None:
            log.info("media %s already prepared (%s)", digest, label)
            return done
        probe = _probe(orig_tmp, label)
        _check_duration(probe, settings, label)
        rate = max(settings.kiosk_rate, settings.phone_rate)
        pcm = _decode(orig_tmp, probe, rate, _decode_cap(settings), label)
        prepared, outputs = _process(pcm, rate, probe, digest, settings, label)
        return _commit(media_dir, prepared, orig_tmp, outputs, temps)
    finally:
        for t in temps:
            with contextlib.suppress(FileNotFoundError):
                t.unlink()


def variant_path(media_dir: Path, hash: str, variant: str) -> Path:
    """Where a variant lives: "phone" or "kiosk" (WAV files), or "orig" for the uploaded bytes."""
    _check_hash(hash)
    if variant in VARIANTS:
        return Path(media_dir) / f"{hash}.{variant}.wav"
    if variant == "orig":
        found = original_path(media_dir, hash)
        if found is None:
            raise FileNotFoundError(f"no original for media {hash} in {media_dir}")
        return found
    raise ValueError(f"unknown media variant {variant!r}; expected phone, kiosk or orig")


def original_path(media_dir: Path, hash: str) -> Path | None:
    """The kept original upload of ``hash``, or None if it is not there."""
    _check_hash(hash)
    meta = _load_meta(Path(media_dir), hash)
    if meta is not None:
        return Path(media_dir) / f"{hash}.orig.{meta.original_ext}"
    return next(iter(sorted(Path(media_dir).glob(f"{hash}.orig.*"))), None)


def register(db: sqlite_utils.Database, prepared: Prepared, original_name: str | None) -> None:
    """Upsert the ``media`` row of a prepared file (keeps the first ``created_at``)."""
    with store.write(db):
        db.execute(
            "INSERT INTO media (hash, duration_ms, original_name, original_ext, source_format,"
            " loudness_lufs, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(hash) DO UPDATE SET duration_ms = excluded.duration_ms,"
            " original_name = COALESCE(excluded.original_name, media.original_name),"
            " original_ext = excluded.original_ext, source_format = excluded.source_format,"
            " loudness_lufs = excluded.loudness_lufs",
            [prepared.hash, prepared.duration_ms, display_name(original_name),
             prepared.original_ext, prepared.source_format, prepared.loudness_lufs, store.now()])


def discard_unused(db: sqlite_utils.Database, media_dir: Path, hash: str) -> bool:
    """Remove the row and files of ``hash`` if no recording or prompt uses it; True if removed.

    For an upload refused after its audio was prepared: nothing of it may stay behind.
    """
    _check_hash(hash)
    with store.write(db):
        used = db.execute("SELECT 1 FROM recordings WHERE media = ? UNION ALL "
                          "SELECT 1 FROM prompts WHERE media = ?", [hash, hash]).fetchone()
        if used:
            return False
        db.execute("DELETE FROM media WHERE hash = ?", [hash])
    # The metadata first: without it the other files no longer count as prepared.
    for path in [_meta_path(Path(media_dir), hash), *sorted(Path(media_dir).glob(f"{hash}.*"))]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    log.info("media %s discarded (unused)", hash)
    return True


def read_pcm(path: Path, rate: int) -> np.ndarray:
    """Decode any audio file to int16 mono samples at ``rate`` (MediaError if it cannot)."""
    path = Path(path)
    label = path.name
    _size(path, label)
    probe = _probe(path, label)
    pcm = _decode(path, probe, rate, None, label)
    return _to_int16(pcm)


def display_name(original_name: str | None) -> str | None:
    """The upload's name reduced to something safe to show: no folders, no control characters."""
    if not original_name:
        return None
    name = re.split(r"[\\/]", str(original_name))[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:200] or None


# --- checks -------------------------------------------------------------------------------------

def _scrub(text: str, cmd: list[str], label: str) -> str:
    """ffmpeg's words with the file it read (our temporary copy) named as the upload was."""
    for arg in cmd:
        if arg.startswith("file:"):
            text = text.replace(arg, label).replace(arg[len("file:"):], label)
    return text


def _reject(label: str, reason: str, message: str) -> MediaError:
    log.warning("media rejected: %r: %s", label, reason)
    return MediaError(message)


def _size(src: Path, label: str) -> int:
    try:
        return src.stat().st_size
    except OSError as exc:
        raise _reject(label, f"cannot stat: {exc}",
                      "No se pudo leer el archivo subido. Inténtelo de nuevo.") from exc


def _probe(path: Path, label: str) -> _Probe:
    cmd = ["ffprobe", "-v", "error", "-hide_banner", "-protocol_whitelist", "file",
           "-format_whitelist", DEMUXERS, "-show_entries",
           ("format=format_name,duration:stream=codec_type,codec_name,nb_frames"
            ":stream_disposition=attached_pic"), "-of", "json", f"file:{path.resolve()}"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise _reject(label, "ffprobe timed out", _UNREADABLE) from exc
    if out.returncode != 0:
        reason = out.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise _reject(label, f"ffprobe failed: {_scrub(reason[0], cmd, label)}", _UNREADABLE)
    info = json.loads(out.stdout or b"{}")
    streams = info.get("streams", [])
    fmt = info.get("format", {})
    if any(_is_real_video(s) for s in streams):
        raise _reject(label, "contains a video stream",
                      "El archivo es un video. Suba solo el audio (por ejemplo, una nota de voz "
                      "o un archivo MP3).")
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        raise _reject(label, f"no audio stream ({fmt.get('format_name')})", _NOT_AUDIO)
    duration = _float(fmt.get("duration"))
    container = fmt.get("format_name", "?")
    declared = (container.split(",")[0] in HEADER_DURATION_FORMATS
                or (container == "mp3" and _mp3_declares_length(path)))
    return _Probe(container, audio[0].get("codec_name", "?"), duration, declared)


def _mp3_declares_length(path: Path) -> bool:
    """True if the first MPEG frame holds a Xing/Info/VBRI header (LAME and ffmpeg write one).

    Without it ffprobe estimates the length from the file size, so a cut file looks complete.
    """
    with open(path, "rb") as f:
        head = f.read(10)
        start = 0
        if head[:3] == b"ID3" and len(head) == 10:  # ID3v2: syncsafe size, optional footer
            start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
            start += 10 if head[5] & 0x10 else 0
        f.seek(start)
        data = f.read(4096)
    sync = next((i for i in range(len(data) - 1)
                 if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0), None)
    if sync is None:
        return False
    # The tag sits after the side information: 4 + 9, 17 or 32 bytes into the frame.
    frame = data[sync:sync + 48]
    return any(frame.find(tag, 4) != -1 for tag in MP3_FRAME_COUNT_TAGS)


_UNREADABLE = ("No se pudo leer el archivo: no es un audio conocido o está dañado. "
               "Suba una grabación en MP3, M4A, OGG, OPUS, AMR, WEBM, FLAC o WAV.")
_NOT_AUDIO = "El archivo no contiene audio. Suba una grabación de voz."


def _is_real_video(stream: dict) -> bool:
    if stream.get("codec_type") != "video":
        return False
    if stream.get("disposition", {}).get("attached_pic"):
        return False  # cover art in MP3/M4A
    # A single still image without the flag (some taggers) is cover art too.
    return not (stream.get("codec_name") in IMAGE_CODECS and stream.get("nb_frames") in (None, "1"))


def _float(value) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _decode_cap(settings: MediaSettings) -> float:
    return settings.max_seconds + SILENCE_ALLOWANCE_S


def _check_duration(probe: _Probe, settings: MediaSettings, label: str) -> None:
    if probe.duration is not None and probe.duration > _decode_cap(settings):
        raise _too_long(label, probe.duration, settings, "probed")


def _too_long(label: str, seconds: float, settings: MediaSettings, how: str) -> MediaError:
    return _reject(label, f"too long ({how} {seconds:.0f} s > {settings.max_seconds:.0f} s)",
                   f"La grabación es demasiado larga ({_clock(seconds)}). El máximo es "
                   f"{_clock(settings.max_seconds)}. Divídala en lecciones más cortas.")


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


# --- decoding -----------------------------------------------------------------------------------

def _decode(path: Path, probe: _Probe, rate: int, cap: float | None, label: str) -> np.ndarray:
    """Mono float32 at ``rate``; at most ``cap`` seconds and a little more (which means too long)."""
    if probe.codec in ("amr_nb", "amr_wb"):
        pcm = _decode_amr(path, probe, rate, cap, label)
    else:
        pcm = _decode_ffmpeg(path, rate, cap, label)
    got = len(pcm) / rate
    if (probe.duration and probe.declared
            and (cap is None or got < cap) and got < probe.duration - max(1.0, 0.05 * probe.duration)):
        raise _reject(label, f"decoded {got:.1f} s of {probe.duration:.1f} s", _broken(got))
    return pcm


def _broken(at: float) -> str:
    return (f"El archivo está dañado o incompleto: se corta a los {_clock(at)}. "
            "Vuelva a exportar o a enviar la grabación.")


def _ffmpeg_input(path: Path) -> list[str]:
    return ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror",
            "-protocol_whitelist", "file", "-format_whitelist", DEMUXERS,
            "-i", f"file:{path.resolve()}", "-map", "0:a:0", "-vn", "-sn", "-dn"]


def _run(cmd: list[str], cap: float | None, label: str, bytes_per_second: float) -> bytes:
    """Run ffmpeg, return its stdout; any decoder message (``-v error``) rejects the file."""
    # Generous for a slow Raspberry Pi, but a hostile file cannot hang an upload forever.
    timeout = 60 + (cap if cap is not None else 3600) / 5
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                bufsize=0)
        killed = threading.Event()
        timer = threading.Timer(timeout, lambda: (killed.set(), proc.kill()))
        timer.start()
        try:
            data = _read_pipe(proc.stdout)
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        err.seek(0)
        errors = err.read(100_000).decode(errors="replace").strip()
    if killed.is_set():
        raise _reject(label, f"ffmpeg killed after {timeout:.0f} s", _UNREADABLE)
    if rc != 0 or errors:
        # ffmpeg stops at the first decoder error (-xerror); what came out before is the good part.
        raise _reject(label, f"decoder error (rc {rc}): {_scrub(errors, cmd, label)[-300:]}",
                      _broken(len(data) / bytes_per_second))
    return data


def _read_pipe(pipe) -> bytes:
    # A 1 MiB pipe and 1 MiB reads: with the default 64 KiB, the reader costs more than decoding.
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, 1 << 20)
    chunks = []
    while chunk := pipe.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_ffmpeg(path: Path, rate: int, cap: float | None, label: str) -> np.ndarray:
    cmd = _ffmpeg_input(path) + ["-ac", "1", "-ar", str(rate)]
    if cap is not None:
        cmd += ["-t", f"{cap + 0.5:.3f}"]  # anything past the cap means "too long"
    # Without -flush_packets 0 the raw muxer writes every few kB and the reader wakes 20000 times.
    cmd += ["-flush_packets", "0", "-f", "f32le", "pipe:1"]
    return np.frombuffer(_run(cmd, cap, label, 4.0 * rate), dtype="<f4")


def _decode_amr(path: Path, probe: _Probe, rate: int, cap: float | None, label: str) -> np.ndarray:
    # ffmpeg only remuxes (from .amr or .3gp) to the storage format; libopencore decodes.
    data = _run(_ffmpeg_input(path) + ["-c:a", "copy", "-f", "amr", "pipe:1"], cap, label,
                1600.0)  # about 12.2 kbit/s: only to say roughly where it broke
    try:
        pcm = amr.decode(probe.codec, data, None if cap is None else cap + 0.5)
    except amr.BadFrame as exc:
        raise _reject(label, str(exc), _broken(exc.seconds)) from exc
    except ValueError as exc:
        raise _reject(label, str(exc), _UNREADABLE) from exc
    return _resample(pcm.astype(np.float32) / 32768.0, amr.native_rate(probe.codec), rate)


def _resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate or len(pcm) == 0:
        return pcm
    import soxr

    return soxr.resample(pcm, from_rate, to_rate).astype(np.float32, copy=False)


# --- processing ---------------------------------------------------------------------------------

def _process(pcm: np.ndarray, rate: int, probe: _Probe, digest: str, settings: MediaSettings,
             label: str) -> tuple[Prepared, dict[str, tuple[np.ndarray, int]]]:
    cap = _decode_cap(settings)
    if len(pcm) / rate > cap:
        raise _too_long(label, len(pcm) / rate, settings, "decoded more than")
    start, end = _speech_bounds(pcm, rate, settings.silence_dbfs)
    if end <= start:
        raise _reject(label, f"silent (nothing above {settings.silence_dbfs} dBFS)",
                      "La grabación está en silencio: no se oye ninguna voz. Revise el micrófono "
                      "y vuelva a grabar.")
    speech = pcm[start:end]
    seconds = len(speech) / rate
    if seconds < settings.min_seconds:
        raise _reject(label, f"too short after trimming ({seconds:.2f} s)",
                      "La grabación es demasiado corta o casi no tiene voz. Grabe de nuevo, "
                      "hablando cerca del teléfono.")
    if seconds > settings.max_seconds:
        raise _too_long(label, seconds, settings, "trimmed")
    lufs = loudness.integrated_loudness(speech, rate)
    if not math.isfinite(lufs):
        raise _reject(label, "no gated loudness blocks", "La grabación está casi en silencio.")
    outputs = {}
    for variant, vrate in (("phone", settings.phone_rate), ("kiosk", settings.kiosk_rate)):
        y = _resample(speech, rate, vrate)
        known = lufs if vrate == rate else None
        y = loudness.normalise(y, vrate, settings.target_lufs, settings.peak_dbfs, known)
        outputs[variant] = (y, vrate)
    ext = _extension(probe)
    prepared = Prepared(hash=digest, duration_ms=round(seconds * 1000),
                        source_format=f"{probe.codec}/{ext}", loudness_lufs=round(lufs, 2),
                        original_ext=ext)
    return prepared, outputs


def _speech_bounds(pcm: np.ndarray, rate: int, silence_dbfs: float) -> tuple[int, int]:
    """Sample range from the first to the last frame louder than ``silence_dbfs``, padded."""
    frame = max(1, int(rate * FRAME_S))
    n = len(pcm) // frame
    if n == 0:
        return 0, 0
    frames = pcm[: n * frame].reshape(n, frame)
    # Remove each frame's mean: a DC offset from a cheap microphone is not speech.
    mean = frames.mean(axis=1, dtype=np.float64)
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frame - mean * mean
    loud = np.flatnonzero(power > 10 ** (silence_dbfs / 10))
    if len(loud) == 0:
        return 0, 0
    pad = int(TRIM_PAD_S * rate)
    return max(0, loud[0] * frame - pad), min(len(pcm), (loud[-1] + 1) * frame + pad)


def _to_int16(y: np.ndarray) -> np.ndarray:
    scaled = y * np.float32(32767.0)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return np.rint(scaled, out=scaled).astype(np.int16)


def _extension(probe: _Probe) -> str:
    container = probe.container.split(",")[0]
    if container == "mov":
        return "3gp" if probe.codec.startswith("amr") else "m4a"
    if container == "matroska":
        return "webm" if "webm" in probe.container and probe.codec in ("opus", "vorbis") else "mka"
    return container


# --- files --------------------------------------------------------------------------------------

def _check_hash(hash: str) -> None:
    if not isinstance(hash, str) or not _HASH_RE.fullmatch(hash):
        raise ValueError(f"not a media hash: {hash!r}")


def _temp(media_dir: Path, temps: list[Path]) -> Path:
    fd, name = tempfile.mkstemp(dir=media_dir, prefix=".tmp-", suffix=".part")
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; Asterisk and the kiosk player run as other users
    os.close(fd)
    temps.append(Path(name))
    return temps[-1]


def _copy_and_hash(src: Path, dst: Path, max_bytes: int, label: str) -> str:
    digest, total = hashlib.sha256(), 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(1 << 20):
            total += len(chunk)
            if total > max_bytes:  # the file grew after we checked its size
                raise _reject(label, "grew past max_bytes while copying",
                              "El archivo es demasiado grande.")
            digest.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest()[:HASH_CHARS]


def _meta_path(media_dir: Path, hash: str) -> Path:
    return media_dir / f"{hash}.json"


def _load_meta(media_dir: Path, hash: str) -> Prepared | None:
    try:
        prepared = Prepared(**json.loads(_meta_path(media_dir, hash).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    needed = [media_dir / f"{hash}.{v}.wav" for v in VARIANTS]
    needed.append(media_dir / f"{hash}.orig.{prepared.original_ext}")
    return prepared if all(p.is_file() for p in needed) else None


def _write_wav(path: Path, y: np.ndarray, rate: int) -> None:
    with open(path, "wb") as f:
        with wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(memoryview(_to_int16(y)).cast("B"))
        f.flush()
        os.fsync(f.fileno())


def _commit(media_dir: Path, prepared: Prepared, orig_tmp: Path,
            outputs: dict[str, tuple[np.ndarray, int]], temps: list[Path]) -> Prepared:
    """Write every variant to a temp file, then rename all into place; the metadata goes last."""
    h = prepared.hash
    staged = [(orig_tmp, media_dir / f"{h}.orig.{prepared.original_ext}")]
    for variant, (y, rate) in outputs.items():
        tmp = _temp(media_dir, temps)
        _write_wav(tmp, y, rate)
        staged.append((tmp, media_dir / f"{h}.{variant}.wav"))
    meta_tmp = _temp(media_dir, temps)
    meta_tmp.write_text(json.dumps(asdict(prepared)), encoding="utf-8")
    staged.append((meta_tmp, _meta_path(media_dir, h)))
    created = []
    try:
        for tmp, final in staged:
            existed = final.exists()
            os.replace(tmp, final)
            if not existed:
                created.append(final)
        fsync_dir(media_dir)
    except BaseException:
        for final in created:
            with contextlib.suppress(FileNotFoundError):
                final.unlink()
        raise
    log.info("media %s prepared: %s, %d ms, %.1f LUFS", h, prepared.source_format,
             prepared.duration_ms, prepared.loudness_lufs)
    return prepared


def fsync_dir(path: Path) -> None:
    """Make the renames in a folder survive a power cut (an SD card keeps old entries otherwise)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
