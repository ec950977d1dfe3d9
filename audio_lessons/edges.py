"""Edges: the kiosks and remote phone lines that sync with this (central) server, each with a token.

A token is 32 random bytes shown once, when the edge is added; only its SHA-256 is kept (the
``devices`` table). A fast hash is enough: the token is random, so there is no password to guess
from a stolen hash, and a lookup by hash needs no timing-safe comparison of secrets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass

import sqlite_utils

from audio_lessons import store
from audio_lessons.errors import SyncError

log = logging.getLogger(__name__)

KINDS = ("kiosk", "line")  # a kiosk box, or a second phone-line server in another town
TOKEN_BYTES = 32
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
LAST_SEEN_EVERY_S = 60  # at most one write per minute per edge for "last seen"


@dataclass(frozen=True)
class Edge:
    name: str
    kind: str
    created_at: str
    last_seen: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


def check_name(name: str) -> str:
    """The name as stored; SyncError (Spanish) unless it is lowercase letters, digits and dashes."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise SyncError(f"El nombre «{name}» no sirve: use minúsculas sin tildes, números y "
                        "guiones, por ejemplo «sala-ocongate».")
    return name


def add(db: sqlite_utils.Database, name: str, kind: str = "kiosk") -> tuple[Edge, str]:
    """Register an edge; returns it and its token (shown once, never stored)."""
    name = check_name(name)
    if kind not in KINDS:
        raise SyncError(f"Tipo desconocido «{kind}»: use {' o '.join(KINDS)}.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    created = store.now()
    with store.write(db):
        if db.execute("SELECT 1 FROM devices WHERE id = ?", [name]).fetchone():
            raise SyncError(f"Ya existe «{name}». Para darle una clave nueva, bórrelo primero "
                            f"(pallay kiosks revoke {name}) y vuelva a agregarlo.")
        db.conn.execute("INSERT INTO devices (id, kind, name, token_hash, created_at) "
                        "VALUES (?, ?, ?, ?, ?)", [name, kind, name, token_hash(token), created])
    log.info("edge %s (%s) added", name, kind)
    return Edge(name, kind, created, None), token


def authenticate(db: sqlite_utils.Database, token: str | None) -> Edge | None:
    """The edge holding ``token``, or None; notes when it was last seen."""
    if not token:
        return None
    row = db.execute("SELECT id, kind, created_at, last_seen FROM devices WHERE token_hash = ?",
                     [token_hash(token)]).fetchone()
    if row is None:
        return None
    edge = Edge(*row)
    now = store.now()
    if edge.last_seen is None or _seconds_between(edge.last_seen, now) >= LAST_SEEN_EVERY_S:
        with store.write(db):
            db.conn.execute("UPDATE devices SET last_seen = ? WHERE id = ?", [now, edge.name])
    return edge


def _seconds_between(earlier: str, later: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    try:
        return (dt.datetime.strptime(later, fmt) - dt.datetime.strptime(earlier, fmt)).total_seconds()
    except ValueError:
        return float("inf")


def get(db: sqlite_utils.Database, name: str) -> Edge | None:
    row = db.execute("SELECT id, kind, created_at, last_seen FROM devices WHERE id = ? "
                     "AND token_hash IS NOT NULL", [name]).fetchone()
    return Edge(*row) if row else None


def list_edges(db: sqlite_utils.Database) -> list[Edge]:
    return [Edge(*row) for row in db.execute(
        "SELECT id, kind, created_at, last_seen FROM devices WHERE token_hash IS NOT NULL "
        "ORDER BY id")]


def revoke(db: sqlite_utils.Database, name: str) -> None:
    """Forget an edge and its token (its events stay); SyncError if there is none."""
    with store.write(db):
        gone = db.conn.execute("DELETE FROM devices WHERE id = ? AND token_hash IS NOT NULL",
                               [name]).rowcount
    if not gone:
        raise SyncError(f"No existe «{name}» (vea pallay kiosks list).")
    log.info("edge %s revoked", name)
