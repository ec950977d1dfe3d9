"""The sync API for edges (kiosks and remote phone lines): a blueprint of the admin server.

Routes live under ``/api/sync/v1`` and are described in ``audio_lessons/sync_openapi.json``,
served at ``/api/sync/v1/openapi.json``. Edges authenticate with ``Authorization: Bearer TOKEN``
(``pallay kiosks add NAME`` prints it); a wrong or missing token gets 401. Views are thin: the
work is in ``audio_lessons.sync`` (manifest), ``outbox`` (events, messages) and ``edges``.

``create_app`` registers ``bp`` and leaves it out of the panel's session log-in and CSRF checks
(``request.blueprint == "sync"``): an edge sends no cookie, so there is nothing for CSRF to guard.
The app config must hold ``PALLAY_SETTINGS`` (an ``audio_lessons.config.Settings``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import zlib
from base64 import b64decode
from importlib import resources
from pathlib import Path

import sqlite_utils
from flask import Blueprint, Response, current_app, g, jsonify, request, send_file
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from audio_lessons import edges, outbox, sync
from audio_lessons.config import Settings
from audio_lessons.errors import SyncError

log = logging.getLogger(__name__)

bp = Blueprint("sync", __name__, url_prefix="/api/sync/v1")
MAX_BODY = 64 * 1024 * 1024  # one events batch or one message, after decompression
PUBLIC = {"sync.openapi"}
_DIGEST = re.compile(r"sha-256=:([A-Za-z0-9+/=]+):")


def _settings() -> Settings:
    return current_app.config["PALLAY_SETTINGS"]


def _db() -> sqlite_utils.Database:
    if "sync_db" not in g:
        g.sync_db = sync.connect(_settings().db_path)
        # An acknowledged event must survive a power cut here: the edge will not send it again.
        g.sync_db.execute("PRAGMA synchronous = FULL")
    return g.sync_db


@bp.teardown_app_request
def _close_db(exc: BaseException | None = None) -> None:
    db = g.pop("sync_db", None)
    if db is not None:
        db.conn.close()


def _error(code: int, error: str, message: str) -> Response:
    response = jsonify({"error": error, "message": message})
    response.status_code = code
    if code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="pallay-sync"'
    return response


@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC:
        return None
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    edge = edges.authenticate(_db(), token.strip()) if scheme.lower() == "bearer" else None
    if edge is None:
        log.warning("sync: %s %s from %s refused: wrong or missing token", request.method,
                    request.path, request.remote_addr)
        return _error(401, "unauthorized", "La clave de este equipo no es válida: pida una "
                      "nueva con «pallay kiosks add» en el servidor.")
    g.edge = edge
    return None


@bp.after_request
def _name_the_edge(response: Response) -> Response:
    if "edge" in g:
        response.headers["Pallay-Edge"] = g.edge.name  # the edge learns its own name
    return response


@bp.errorhandler(SyncError)
def _refused(exc: SyncError):
    log.warning("sync: %s %s from %s refused: %s", request.method, request.path,
                g.get("edge").name if "edge" in g else "?", exc)
    return _error(422, "invalid", str(exc))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return _error(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                  exc.description or "")


@bp.get("/openapi.json")
def openapi() -> Response:
    spec = resources.files("audio_lessons").joinpath("sync_openapi.json").read_bytes()
    return Response(spec, mimetype="application/json")


@bp.get("/manifest")
def manifest() -> Response:
    found = sync.build_manifest(_db(), _settings().media_dir)
    if found.version in request.if_none_match:
        response = Response(status=304)
    else:
        body = jsonify(found.to_dict()).get_data()
        response = Response(body, mimetype="application/json")
        if "gzip" in request.accept_encodings:
            response.set_data(gzip.compress(body, compresslevel=6, mtime=0))
            response.headers["Content-Encoding"] = "gzip"
    response.set_etag(found.version)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/files/<name>")
def media_file(name: str) -> Response:
    """A media file of the catalogue; honours ``Range`` (206) so an edge resumes a download."""
    if not sync.is_media_name(name) or not _db().execute(
            "SELECT 1 FROM media WHERE hash = ?", [name[:32]]).fetchone():
        return _error(404, "not_found", "No existe ese archivo.")
    path = Path(_settings().media_dir) / name
    if not path.is_file():
        return _error(404, "not_found", "No existe ese archivo.")
    return send_file(path, mimetype="audio/wav", conditional=True, etag=True, max_age=0)


def _body() -> bytes:
    """The request body, gunzipped if sent so, at most MAX_BODY bytes (413 beyond)."""
    if (request.content_length or 0) > MAX_BODY:
        return _too_big()
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _too_big()
    if request.headers.get("Content-Encoding", "").lower() != "gzip":
        return raw
    unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = unzip.decompress(raw, MAX_BODY + 1)
    except zlib.error as exc:
        raise SyncError("Los datos llegaron dañados (gzip). Vuelva a intentarlo.") from exc
    if len(data) > MAX_BODY or unzip.unconsumed_tail:
        return _too_big()
    return data


def _too_big() -> bytes:
    raise RequestEntityTooLarge(f"At most {MAX_BODY} bytes per request")


@bp.post("/events")
def push_events() -> Response:
    try:
        payload = json.loads(_body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise SyncError("El lote de eventos no es JSON válido.") from exc
    ack = outbox.import_batch(_db(), g.edge.name, payload)
    return jsonify(ack.to_dict())


@bp.put("/messages/<message_id>")
def push_message(message_id: str) -> tuple[Response, int]:
    """One recorded message: its audio as the body, its details as query parameters."""
    data = _body()
    found = _DIGEST.search(request.headers.get("Content-Digest", ""))
    if not found or b64decode(found.group(1)) != hashlib.sha256(data).digest():
        raise SyncError("El mensaje llegó incompleto (su suma de control no coincide).")
    meta = {**request.args.to_dict(), "id": message_id}
    stored = outbox.store_message(_db(), _settings().messages_dir, g.edge.name, meta, data)
    return jsonify({"id": message_id, "stored": stored}), 201 if stored else 200
