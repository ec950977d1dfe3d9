"""Staff accounts of the admin panel: names, roles, scrypt password hashes and log-in throttling.

Roles nest: an admin can do everything an editor can, an editor everything a viewer can. Failed
log-ins are kept in the store (not in one process's memory), so every panel process and a restart
see the same count.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass

import sqlite_utils

from audio_lessons import store
from audio_lessons.errors import PallayError

log = logging.getLogger(__name__)

ROLES = ("viewer", "editor", "admin")  # each can do what the ones before it can
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # scrypt of a megabyte "password" would be a cheap denial of service
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
# scrypt parameters: about 50 ms and 16 MB a check on this machine's 2 cores; slow for a guesser.
_N, _R, _P = 2**14, 8, 1
FAILURE_WINDOW_S = 15 * 60
MAX_FAILURES_PER_NAME = 5  # then that name waits out the window
MAX_FAILURES_PER_ADDRESS = 20  # one laptop trying many names


class UserError(PallayError):
    """An account change or log-in that cannot be done; the message is Spanish."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: str

    def can(self, role: str) -> bool:
        """True if this user has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) for a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(stored: str, password: str) -> bool:
    """True if ``password`` matches the stored hash (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        found = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                               r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, base64.b64decode(digest))


def _check_name(name: str) -> str:
    name = (name or "").strip().lower()
    if not _NAME.match(name):
        raise UserError(f"El nombre «{name[:40]}» no es válido: use de 1 a 40 letras minúsculas "
                        "sin tildes, números, puntos o guiones (por ejemplo «rosa.quispe»).")
    return name


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"La contraseña debe tener al menos {MIN_PASSWORD} caracteres.")
    if len(password) > MAX_PASSWORD:
        raise UserError("La contraseña es demasiado larga.")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"El rol «{role}» no existe: use admin, editor o viewer.")


def add(db: sqlite_utils.Database, name: str, role: str, password: str) -> User:
    """Create an account; UserError if the name is taken or anything is invalid."""
    name = _check_name(name)
    _check_role(role)
    _check_password(password)
    hashed, now = hash_password(password), store.now()
    with store.write(db):
        if db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
            raise UserError(f"Ya existe el usuario «{name}».")
        db.execute("INSERT INTO users (name, role, password_hash, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?)", [name, role, hashed, now, now])
    log.info("user %s added as %s", name, role)
    return User(name, role, now)


def set_password(db: sqlite_utils.Database, name: str, password: str) -> None:
    """Give an existing account a new password."""
    _check_password(password)
    hashed = hash_password(password)
    with store.write(db):
        changed = db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?",
                             [hashed, store.now(), name]).rowcount
    if not changed:
        raise UserError(f"No existe el usuario «{name}».")
    log.info("user %s: password changed", name)


def set_role(db: sqlite_utils.Database, name: str, role: str) -> None:
    """Change an account's role; the last admin cannot stop being one."""
    _check_role(role)
    with store.write(db):
        current = get(db, name)
        if current is None:
            raise UserError(f"No existe el usuario «{name}».")
        if current.role == "admin" and role != "admin" and _admins(db) == 1:
            raise UserError("Debe quedar al menos un administrador.")
        db.execute("UPDATE users SET role = ?, updated_at = ? WHERE name = ?",
                   [role, store.now(), name])


def remove(db: sqlite_utils.Database, name: str, acting: str | None = None) -> None:
    """Delete an account; the last admin stays, and nobody removes herself (``acting``)."""
    if name == acting:
        raise UserError("No puede borrar su propio usuario.")
    with store.write(db):
        current = get(db, name)
        if current is None:
            raise UserError(f"No existe el usuario «{name}».")
        if current.role == "admin" and _admins(db) == 1:
            raise UserError("Debe quedar al menos un administrador.")
        db.execute("DELETE FROM users WHERE name = ?", [name])


def _admins(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0]


def get(db: sqlite_utils.Database, name: str) -> User | None:
    row = db.execute("SELECT name, role, created_at FROM users WHERE name = ?",
                     [name]).fetchone()
    return User(*row) if row else None


def list_users(db: sqlite_utils.Database) -> list[User]:
    return [User(*row) for row in db.execute(
        "SELECT name, role, created_at FROM users ORDER BY name")]


def count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM users").fetchone()[0]


def authenticate(db: sqlite_utils.Database, name: str, password: str, address: str,
                 clock=time.time) -> User:
    """The user if the password is right; UserError (Spanish) if not or if throttled.

    A throttled name is refused before its password is even checked, so guessing stops paying.
    """
    name = (name or "").strip().lower()[:40]
    now = clock()
    if _throttled(db, name, address, now):
        log.warning("log-in throttled for %r from %s", name, address)
        raise UserError("Demasiados intentos fallidos. Espere 15 minutos e inténtelo de nuevo.")
    row = db.execute("SELECT password_hash FROM users WHERE name = ?", [name]).fetchone()
    # A missing user costs the same scrypt as a wrong password: no hint that the name exists.
    ok = check_password(row[0] if row else _dummy_hash(), (password or "")[:MAX_PASSWORD])
    if not (row and ok):
        with store.write(db):
            db.execute("INSERT INTO login_failures (name, address, at) VALUES (?, ?, ?)",
                       [name, address, now])
        log.warning("failed log-in for %r from %s", name, address)
        raise UserError("Usuario o contraseña incorrectos.")
    with store.write(db):
        db.execute("DELETE FROM login_failures WHERE name = ? OR at < ?",
                   [name, now - FAILURE_WINDOW_S])
    return get(db, name)


def _throttled(db: sqlite_utils.Database, name: str, address: str, now: float) -> bool:
    since = now - FAILURE_WINDOW_S
    by_name = db.execute("SELECT count(*) FROM login_failures WHERE name = ? AND at > ?",
                         [name, since]).fetchone()[0]
    by_address = db.execute("SELECT count(*) FROM login_failures WHERE address = ? AND at > ?",
                            [address, since]).fetchone()[0]
    return by_name >= MAX_FAILURES_PER_NAME or by_address >= MAX_FAILURES_PER_ADDRESS


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))
