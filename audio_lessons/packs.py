"""USB packs for edges with no network: content out to the kiosk, events back to the server.

A pack is an uncompressed tar (WAV barely compresses; tar streams and is in the standard library)
that is only ever read member by member into our own paths, never extracted as it is:

- content pack (``pallay pack export``): ``pallay-pack.json`` with the manifest and the server's
  acknowledgements of events it already holds, then ``files/<name>`` for every media file;
- events pack (``pallay pack events``): ``pallay-events.json`` (edge, store, cursors), then
  ``listens.jsonl.gz``, ``navs.jsonl.gz``, ``messages.jsonl.gz`` and ``messages/<file>``.

A kiosk importing a content pack takes the same path as an HTTP sync: staging, hash check, switch.
Writing a pack to the stick goes to a temporary name first, so a pulled stick never holds half a
pack under the real name. The events pack holds every event the server has not acknowledged, not
only those since the last trip: a stick lost on the way loses nothing.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from audio_lessons import edges, media, outbox, sync
from audio_lessons.errors import SyncError
from audio_lessons.media import VARIANTS

log = logging.getLogger(__name__)

CONTENT_HEADER = "pallay-pack.json"
EVENTS_HEADER = "pallay-events.json"
CHUNK_EVENTS = 2000


@dataclass(frozen=True)
class PackReport:
    files: int  # media files written or copied in
    bytes: int
    switched: bool
    version: str


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[tarfile.TarFile]:
    path = Path(path)
    if path.is_dir():
        raise SyncError(f"{path} es una carpeta: indique un nombre de archivo, por ejemplo "
                        f"{path / 'pallay.tar'}.")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            yield tar
            tar.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
        media.fsync_dir(path.parent)
    except OSError as exc:
        raise SyncError(f"No se pudo escribir {path}: {exc.strerror or exc}. ¿Está la memoria "
                        "USB conectada y con espacio?") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


_WRONG_PACK = {
    (CONTENT_HEADER, True): "Es un paquete de eventos de un quiosco: cárguelo en el servidor con "
                            "«pallay pack import-events».",
    (EVENTS_HEADER, True): "Es un paquete de contenido: cárguelo en el quiosco con "
                            "«pallay pack import».",
}


@contextlib.contextmanager
def _reading(path: Path, header: str) -> Iterator[tuple[tarfile.TarFile, dict]]:
    try:
        with tarfile.open(path, mode="r:") as tar:
            names = set(tar.getnames())
            if header not in names:
                other = EVENTS_HEADER if header == CONTENT_HEADER else CONTENT_HEADER
                raise SyncError(_WRONG_PACK.get((header, other in names),
                                                f"{path} no es un paquete de pallay."))
            head = json.loads(_member(tar, header).read())
            yield tar, head
    except FileNotFoundError as exc:
        raise SyncError(f"No existe el archivo {path}.") from exc
    except (tarfile.TarError, json.JSONDecodeError, UnicodeDecodeError, EOFError) as exc:
        log.warning("pack %s unreadable: %r", path, exc)
        raise SyncError(f"{path} no es un paquete de pallay o está dañado.") from exc


def _member(tar: tarfile.TarFile, name: str):
    try:
        member = tar.getmember(name)
    except KeyError as exc:
        raise SyncError(f"El paquete está incompleto: falta {name}.") from exc
    found = tar.extractfile(member) if member.isfile() else None
    if found is None:
        raise SyncError(f"El paquete está dañado: {name} no es un archivo.")
    return found


# --- content ------------------------------------------------------------------------------------

def export_content(db: sqlite_utils.Database, media_dir: Path, path: Path,
                   variants: Iterable[str] = VARIANTS) -> PackReport:
    """Write the published catalogue and its media (of ``variants``) to ``path``."""
    manifest = sync.build_manifest(db, media_dir)
    wanted = manifest.wanted(variants)
    head = {"kind": "content", "manifest": manifest.to_dict(), "acks": outbox.acks(db)}
    with _writing(path) as tar:
        _add_bytes(tar, CONTENT_HEADER, json.dumps(head, ensure_ascii=False).encode())
        for entry in wanted:
            tar.add(Path(media_dir) / entry.name, arcname=f"files/{entry.name}", recursive=False)
    size = sum(e.size for e in wanted)
    log.info("content pack %s: version %s, %d files, %d bytes", path, manifest.version,
             len(wanted), size)
    return PackReport(len(wanted), size, False, manifest.version)


def import_content(db: sqlite_utils.Database, data_dir: Path, media_dir: Path, path: Path,
                   variants: Iterable[str], edge: str | None) -> PackReport:
    """Load a content pack on an edge: stage what is missing, check, switch; take the acks."""
    variants = tuple(variants)
    staging = sync.Staging(Path(data_dir) / "sync" / "staging")
    with sync.exclusive(Path(data_dir) / "sync"), _reading(path, CONTENT_HEADER) as (tar, head):
        if head.get("kind") != "content":
            raise SyncError(f"{path} no es un paquete de contenido (¿es un paquete de eventos?).")
        manifest = sync.Manifest.from_dict(head.get("manifest"))
        staging.prune(manifest.wanted(variants))
        todo = sync.missing(db, media_dir, staging, manifest, variants)
        for entry in todo:
            _stage(tar, entry, staging)
        switched = sync.switch(db, media_dir, staging, manifest, variants)
        outbox.apply_acks(db, edge or sync.get_state(db, "edge"), head.get("acks") or [])
    return PackReport(len(todo), sum(e.size for e in todo), switched, manifest.version)


def _stage(tar: tarfile.TarFile, entry: sync.FileEntry, staging: sync.Staging) -> None:
    source = _member(tar, f"files/{entry.name}")
    with open(staging.part(entry), "wb") as out:
        while chunk := source.read(sync.CHUNK):
            out.write(chunk)
    staging.finish(entry)


# --- events -------------------------------------------------------------------------------------

def _jsonl_gz(rows: Iterable[dict]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        for row in rows:
            gz.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
    return buffer.getvalue()


def _stream_gz(db: sqlite_utils.Database, stream: str) -> tuple[bytes, int, int | None]:
    """(gzipped JSON lines, count, last rowid) of every unacknowledged row of ``stream``."""
    count, last = 0, outbox.sent_upto(db, stream)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        while found := outbox.stream_rows(db, stream, last, 10_000):
            gz.write(b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n"
                              for _, row in found))
            count, last = count + len(found), found[-1][0]
    return buffer.getvalue(), count, (last if count else None)


def export_events(db: sqlite_utils.Database, messages_dir: Path, path: Path,
                  edge: str | None) -> dict[str, int]:
    """Write every event and message the server has not acknowledged to ``path``."""
    edge = edge or sync.get_state(db, "edge")
    if not edge:
        raise SyncError("Este equipo no sabe su nombre en el servidor: ponga [sync] edge = "
                        "\"NOMBRE\" en pallay.toml (el nombre dado con «pallay kiosks add»).")
    head = {"kind": "events", "format": 1, "edge": edge, "store": outbox.store_id(db),
            "upto": {}, "counts": {}}
    members = {}
    for stream in outbox.STREAMS:
        members[f"{stream}.jsonl.gz"], head["counts"][stream], last = _stream_gz(db, stream)
        if last is not None:
            head["upto"][stream] = last
    messages = outbox.pending_messages(db, messages_dir, limit=1 << 30)
    members["messages.jsonl.gz"] = _jsonl_gz(meta for _, meta, _ in messages)
    head["counts"]["messages"] = len(messages)
    if messages:
        head["upto"]["messages"] = messages[-1][0]
    with _writing(path) as tar:
        _add_bytes(tar, EVENTS_HEADER, json.dumps(head).encode())
        for name, data in members.items():
            _add_bytes(tar, name, data)
        for _, meta, file in messages:
            if file is None:
                log.error("message %s: its file is gone; only its details travel", meta["id"])
                continue
            tar.add(file, arcname=f"messages/{meta['id']}.{meta['ext']}", recursive=False)
    log.info("events pack %s for %s: %s", path, edge, head["counts"])
    return head["counts"]


def _read_jsonl(tar: tarfile.TarFile, name: str) -> Iterator[dict]:
    with gzip.GzipFile(fileobj=_member(tar, name)) as gz:
        for line in gz:
            if line.strip():
                yield json.loads(line)


def import_events(db: sqlite_utils.Database, messages_dir: Path, path: Path) -> dict[str, int]:
    """Load an events pack on the server (idempotent); returns how many of each were new."""
    with _reading(path, EVENTS_HEADER) as (tar, head):
        edge = head.get("edge")
        if head.get("kind") != "events" or not isinstance(edge, str):
            raise SyncError(f"{path} no es un paquete de eventos de un quiosco.")
        if edges.get(db, edge) is None:
            raise SyncError(f"El paquete viene de «{edge}», que no está registrado aquí: "
                            f"agréguelo con «pallay kiosks add {edge}».")
        new = {s: 0 for s in (*outbox.STREAMS, "messages")}
        for stream in outbox.STREAMS:
            for chunk in _chunks(_read_jsonl(tar, f"{stream}.jsonl.gz"), CHUNK_EVENTS):
                ack = outbox.import_batch(db, edge, {stream: chunk}, record_cursor=False)
                new[stream] += ack.new[stream]
        for meta in _read_jsonl(tar, "messages.jsonl.gz"):
            data = _message_bytes(tar, meta)
            new["messages"] += outbox.store_message(db, messages_dir, edge, meta, data)
        outbox.record_delivery(db, edge, head.get("store"), head.get("upto"))
    log.info("events pack %s from %s: new %s", path, edge, new)
    return new


def _chunks(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _message_bytes(tar: tarfile.TarFile, meta: dict) -> bytes:
    name = f"messages/{meta.get('id')}.{meta.get('ext')}"
    try:
        return _member(tar, name).read()
    except SyncError:
        log.error("events pack lacks %s; the message is kept without audio", name)
        return b""
