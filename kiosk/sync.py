"""The edge's side of the sync over HTTP: push events and messages, pull content, switch.

HTTP through the standard library (urllib.request): the client needs GET with ``Range``, POST and
PUT of bytes, timeouts and gzip, which a dependency would not shorten, and the Pi keeps one
package fewer. The protocol is in ``audio_lessons/sync_openapi.json``; the storage rules (staging,
hash check, atomic switch, cursors moved only on acknowledgement) are in ``audio_lessons.sync``
and ``audio_lessons.outbox``, shared with USB packs.

``sync_once`` runs one whole sync; ``BackgroundSync.tick()`` is what the kiosk's controller calls
now and then: it never blocks, starts a sync in a worker thread when one is due, and backs off
after failures.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from audio_lessons import outbox, store, sync
from audio_lessons.config import Settings
from audio_lessons.errors import SyncError

log = logging.getLogger(__name__)

API = "/api/sync/v1"
MESSAGES_PER_PAGE = 50


class Transient(Exception):
    """A failure worth another try: no network, a cut connection, a busy server (5xx, 429)."""


@dataclass
class Traffic:
    """What one client moved, for reports and the benchmark."""

    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    files: int = 0


class Client:
    """The sync API of one server, for one edge token; retries with exponential backoff."""

    def __init__(self, server: str, token: str, timeout: float = 30.0, tries: int = 4,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep):
        if not server.startswith(("http://", "https://")):
            raise SyncError(f"La dirección del servidor «{server}» debe empezar con http:// "
                            "o https://, por ejemplo http://192.168.1.10:8000.")
        self.base = server.rstrip("/") + API
        self.token, self.timeout, self.tries, self.backoff = token.strip(), timeout, tries, backoff
        self.sleep = sleep
        self.traffic = Traffic()

    @classmethod
    def from_settings(cls, settings: Settings) -> Client:
        if not settings.sync.server:
            raise SyncError("No hay servidor configurado: ponga [sync] server = "
                            "\"http://DIRECCION:PUERTO\" en pallay.toml, o use una memoria USB "
                            "(pallay pack import).")
        return cls(settings.sync.server, read_token(settings), settings.sync.timeout_seconds)

    def _open(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None):
        request = urllib.request.Request(self.base + path, data=body, method=method, headers={
            "Authorization": f"Bearer {self.token}", "User-Agent": "pallay-edge/1",
            **(headers or {})})
        self.traffic.requests += 1
        self.traffic.bytes_out += len(body or b"")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return exc
            detail = _message_of(exc)
            if exc.code == 401:
                raise SyncError("El servidor rechazó la clave de este equipo (401). Pida una "
                                "clave nueva con «pallay kiosks add» en el servidor.") from exc
            if exc.code >= 500 or exc.code == 429:
                raise Transient(f"HTTP {exc.code} {detail}") from exc
            raise SyncError(f"El servidor no aceptó la sincronización ({exc.code}): "
                            f"{detail}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise Transient(f"{method} {path}: {exc}") from exc

    def _retry(self, what: str, attempt: Callable[[], object]):
        for n in range(self.tries):
            try:
                return attempt()
            except Transient as exc:
                if n == self.tries - 1:
                    log.warning("sync: %s failed %d times, last: %s", what, self.tries, exc)
                    raise SyncError("No se pudo hablar con el servidor (sin red, o el servidor "
                                    "no responde). Se intentará más tarde.") from exc
                delay = self.backoff * 2 ** n * random.uniform(0.5, 1.5)
                log.info("sync: %s: %s; again in %.1f s", what, exc, delay)
                self.sleep(delay)

    def _json(self, response) -> dict:
        raw = response.read()
        self.traffic.bytes_in += len(raw)
        if response.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw)

    def manifest(self, have: str | None = None) -> tuple[sync.Manifest | None, str | None]:
        """(the server's manifest or None if it is still ``have``, this edge's name there)."""
        def attempt():
            headers = {"Accept-Encoding": "gzip", **({"If-None-Match": f'"{have}"'} if have else {})}
            with self._open("GET", "/manifest", headers=headers) as response:
                edge = response.headers.get("Pallay-Edge")
                if response.status == 304:
                    return None, edge
                try:
                    return sync.Manifest.from_dict(self._json(response)), edge
                except (OSError, http.client.HTTPException, EOFError) as exc:
                    raise Transient(f"manifest cut short: {exc}") from exc
                except ValueError as exc:
                    raise Transient(f"manifest unreadable: {exc}") from exc
        return self._retry("manifest", attempt)

    def download(self, entry: sync.FileEntry, part: Path) -> None:
        """Fetch ``entry`` into ``part``, resuming from what it already holds."""
        self._retry(f"download {entry.name}", lambda: self._download_once(entry, part))
        self.traffic.files += 1

    def _download_once(self, entry: sync.FileEntry, part: Path) -> None:
        have = part.stat().st_size if part.exists() else 0
        if have > entry.size:
            part.unlink()
            have = 0
        if have == entry.size:
            return  # complete; Staging.finish checks its hash
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self._open("GET", f"/files/{entry.name}", headers=headers) as response:
            resumed = response.status == 206 and response.headers.get(
                "Content-Range", "").startswith(f"bytes {have}-")
            with open(part, "ab" if resumed else "wb") as out:
                try:
                    while chunk := response.read(sync.CHUNK):
                        out.write(chunk)
                        self.traffic.bytes_in += len(chunk)
                except (OSError, http.client.HTTPException) as exc:
                    raise Transient(f"{entry.name} cut at {out.tell()} bytes: {exc}") from exc
        if part.stat().st_size < entry.size:
            raise Transient(f"{entry.name} ended at {part.stat().st_size} of {entry.size} bytes")

    def push_events(self, batch: dict) -> dict:
        body = gzip.compress(json.dumps(batch, ensure_ascii=False).encode(), compresslevel=5)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

        def attempt():
            with self._open("POST", "/events", body, headers) as response:
                try:
                    return self._json(response)
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    raise Transient(f"events answer cut short: {exc}") from exc
        return self._retry("push events", attempt)

    def push_message(self, meta: dict, data: bytes) -> bool:
        query = urllib.parse.urlencode({k: v for k, v in meta.items() if k != "id" and v is not None})
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Digest": f"sha-256=:{digest}:"}

        def attempt():
            with self._open("PUT", f"/messages/{meta['id']}?{query}", data, headers) as response:
                try:
                    return bool(self._json(response).get("stored"))
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    raise Transient(f"message answer cut short: {exc}") from exc
        return self._retry(f"push message {meta['id']}", attempt)


def _message_of(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read()).get("message", "")
    except (ValueError, OSError, AttributeError):
        return exc.reason or ""


def read_token(settings: Settings) -> str:
    path = token_path(settings)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SyncError(f"No se encuentra la clave de este equipo en {path}. Guárdela con "
                        "«pallay kiosk sync --token-stdin».") from exc
    if not token:
        raise SyncError(f"El archivo de la clave {path} está vacío.")
    return token


def token_path(settings: Settings) -> Path:
    path = Path(settings.sync.token_file)
    return path if path.is_absolute() else settings.data_dir / path


def save_token(settings: Settings, token: str) -> Path:
    """Write the edge token to its file, readable by its owner only."""
    path = token_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(token.strip() + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# --- one sync ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncReport:
    version: str | None  # the content this edge has now
    switched: bool
    files: int
    bytes_in: int
    sent: dict[str, int] = field(default_factory=dict)  # acknowledged: listens, navs, messages
    seconds: float = 0.0


def push(db: sqlite_utils.Database, settings: Settings, client: Client) -> dict[str, int]:
    """Send every unacknowledged event and message; cursors move only on the server's ack."""
    sent = {"listens": 0, "navs": 0, "messages": 0}
    while (batch := outbox.pending(db, settings.sync.batch)).size:
        ack = client.push_events(batch.to_dict())
        if not outbox.mark_sent(db, batch, ack.get("acked") or {}):
            raise SyncError("El servidor no confirmó los eventos enviados; se reenviarán.")
        for stream, rows in batch.rows.items():
            sent[stream] += len(set(ack["acked"].get(stream, ())) & {r["id"] for _, r in rows})
    while found := outbox.pending_messages(db, settings.messages_dir, MESSAGES_PER_PAGE):
        for rowid, meta, path in found:
            if path is None:
                log.error("message %s: its file is gone; only its details are sent", meta["id"])
            client.push_message(meta, path.read_bytes() if path else b"")
            outbox.mark_message_sent(db, rowid)
            sent["messages"] += 1
    return sent


def pull(db: sqlite_utils.Database, settings: Settings, client: Client) -> tuple[str | None, bool, int]:
    """Fetch the manifest and what it adds, then switch; (version, switched, files fetched)."""
    have = sync.current_version(db)
    manifest, edge = client.manifest(have)
    if edge and edge != sync.get_state(db, "edge"):
        with store.write(db):
            sync.set_state(db, "edge", edge)
    if manifest is None or manifest.version == have:
        return have, False, 0
    variants = settings.sync.variants
    staging = sync.Staging(settings.data_dir / "sync" / "staging")
    staging.prune(manifest.wanted(variants))
    todo = sync.missing(db, settings.media_dir, staging, manifest, variants)
    for entry in todo:
        _fetch_checked(client, staging, entry)
    switched = sync.switch(db, settings.media_dir, staging, manifest, variants)
    return manifest.version, switched, len(todo)


def _fetch_checked(client: Client, staging: sync.Staging, entry: sync.FileEntry) -> None:
    for last in (False, True):  # a file whose hash is wrong is fetched once more from the start
        client.download(entry, staging.part(entry))
        try:
            staging.finish(entry)
            return
        except SyncError:
            if last:
                raise


def sync_once(settings: Settings, client: Client | None = None) -> SyncReport:
    """One whole sync: events and messages up, then content down and switched."""
    started = time.monotonic()
    client = client or Client.from_settings(settings)
    db = sync.connect(settings.db_path)
    try:
        with sync.exclusive(settings.data_dir / "sync"):
            sent = push(db, settings, client)
            version, switched, files = pull(db, settings, client)
    finally:
        db.conn.close()
    report = SyncReport(version, switched, files, client.traffic.bytes_in, sent,
                        time.monotonic() - started)
    log.info("sync done: %s", report)
    return report


# --- in the background ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncStatus:
    running: bool
    last: SyncReport | None
    error: str | None  # Spanish, for a technician's screen
    failures: int  # in a row
    next_in_s: float


class BackgroundSync:
    """Sync when due, in a worker thread; ``tick()`` is safe to call from the controller loop."""

    def __init__(self, settings: Settings, run: Callable[[Settings], SyncReport] = sync_once,
                 clock: Callable[[], float] = time.monotonic):
        self.settings, self.run, self.clock = settings, run, clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next, self._failures = clock(), 0
        self._last: SyncReport | None = None
        self._error: str | None = None
        self._changed = False

    def tick(self) -> SyncStatus:
        """Start a sync if one is due and none runs; return at once with the status."""
        with self._lock:
            due = self.settings.sync.server and self.clock() >= self._next
            if due and not (self._thread and self._thread.is_alive()):
                self._thread = threading.Thread(target=self._work, name="pallay-sync", daemon=True)
                self._thread.start()
            return self.status()

    def status(self) -> SyncStatus:
        running = bool(self._thread and self._thread.is_alive())
        return SyncStatus(running, self._last, self._error, self._failures,
                          max(0.0, self._next - self.clock()))

    def take_content_changed(self) -> bool:
        """True once after a sync switched content (reload the catalogue between sessions)."""
        with self._lock:
            changed, self._changed = self._changed, False
            return changed

    def _work(self) -> None:
        try:
            report = self.run(self.settings)
        except Exception as exc:  # the kiosk must keep playing whatever the network does
            if not isinstance(exc, SyncError):
                log.exception("background sync failed")
            self._failed(str(exc) if isinstance(exc, SyncError) else "Error inesperado al "
                         "sincronizar; vea el registro.")
            return
        with self._lock:
            self._last, self._error, self._failures = report, None, 0
            self._changed |= report.switched
            self._next = self.clock() + self.settings.sync.interval_minutes * 60

    def _failed(self, message: str) -> None:
        s = self.settings.sync
        with self._lock:
            self._failures += 1
            wait = min(s.max_backoff_minutes, s.retry_minutes * 2 ** (self._failures - 1)) * 60
            self._error = message
            self._next = self.clock() + wait * random.uniform(0.8, 1.0)
        log.warning("background sync failed (%d in a row), next in %.0f s: %s",
                    self._failures, wait, message)
