"""The phone simulator: a keypad page that hears what a caller would, prompt by prompt.

A front end like the phone line, on the shared session driver (``audio_lessons.driver``): the
``Session`` is sans-IO, so it waits here between HTTP requests while the page plays the audio and
sends back the key pressed (or the silence). Events are stored with channel "simulator". Sessions
live in this process's memory and end after ``IDLE_SECONDS`` without a request.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

import sqlite_utils
from flask import Blueprint, abort, g, jsonify, render_template, request, session, url_for

from admin import auth
from admin.db import get_db, settings
from audio_lessons import actions, catalog, store
from audio_lessons.driver import HungUp, Request, Session
from audio_lessons.menu import Caller, MenuEngine
from audio_lessons.session import SessionLog

bp = Blueprint("simulator", __name__, url_prefix="/simulador")
bp.before_request(auth.require("editor"))
IDLE_SECONDS = 600
MAX_SESSIONS = 20


@dataclass
class Call:
    session: Session
    request: Request | None
    owner: str
    db: sqlite_utils.Database  # its own connection: the session's writer outlives the request
    seen: float = field(default_factory=time.monotonic)


_calls: dict[str, Call] = {}
_lock = threading.Lock()


def _sweep() -> None:
    """End idle simulated calls (their events are stored as a hang-up)."""
    now = time.monotonic()
    for key, call in list(_calls.items()):
        if now - call.seen > IDLE_SECONDS or len(_calls) > MAX_SESSIONS:
            _calls.pop(key, None)
            _finish(call)


def _finish(call: Call) -> None:
    for _ in range(5):  # a hang-up, then the driver's own "hang_up" request, then the end
        if call.session.done:
            break
        call.session.send(HungUp())
    call.session.close()
    call.db.conn.close()


def _audio(media_hash: str) -> str:
    return url_for("lessons.audio", media_hash=media_hash, variant="kiosk")


def _describe(req: Request | None) -> dict:
    """What the page must do for one driver request."""
    if req is None or req.method == "hang_up":
        return {"do": "end"}
    args = req.args
    if req.method == "play":
        return {"do": "play", "audio": [_audio(m) for m in args[0]], "keys": args[1]}
    if req.method == "play_lesson":
        return {"do": "lesson", "audio": _audio(args[0]), "offset_ms": args[1], "keys": args[2]}
    if req.method == "wait_key":
        return {"do": "wait", "keys": args[0], "timeout_s": args[1]}
    if req.method == "capture":
        return {"do": "wait", "keys": args[0], "timeout_s": args[1] / 1000}
    return {"do": "skip"}  # record and play_file: the simulator has no microphone line


def _outcome(call: Call, sent: dict):
    """The page's answer turned into what the driver expects for the request it made."""
    method, key = call.request.method, sent.get("key") or None
    if sent.get("hangup"):
        return HungUp(int(sent.get("position_ms") or 0))
    if method == "play_lesson":
        return key, int(sent.get("position_ms") or 0)
    if method == "record":
        empty = settings().cache_dir / f"sim-{secrets.token_hex(6)}.wav"
        empty.parent.mkdir(parents=True, exist_ok=True)
        empty.write_bytes(b"")
        return actions.Recorded(str(empty), 0)
    if method == "play_file":
        return None
    return key


@bp.route("/")
def index():
    return render_template("simulator/index.html")


@bp.route("/llamar", methods=["POST"])
def start():
    db = store.connect(settings().db_path)
    log = SessionLog(db, settings().messages_dir, channel="simulator",
                     device=f"panel-{g.user.name}", listener=None)
    sim = Session(MenuEngine(catalog.view(get_db()), settings()), Caller(), log)
    call = Call(sim, sim.start(), g.user.name, db)
    key = secrets.token_urlsafe(12)
    with _lock:
        _sweep()
        old = _calls.pop(session.get("sim", ""), None)
        _calls[key] = call
    if old:
        _finish(old)
    session["sim"] = key
    return jsonify(_describe(call.request))


@bp.route("/paso", methods=["POST"])
def step():
    with _lock:
        call = _calls.get(session.get("sim", ""))
    if call is None or call.owner != g.user.name:
        abort(404)
    call.seen = time.monotonic()
    call.request = call.session.send(_outcome(call, request.get_json(silent=True) or {}))
    if call.request is None or call.request.method == "hang_up":
        with _lock:
            _calls.pop(session.get("sim", ""), None)
        _finish(call)
        return jsonify({"do": "end"})
    return jsonify(_describe(call.request))
