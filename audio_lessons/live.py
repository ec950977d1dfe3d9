"""The calls up right now, as a small snapshot file the phone line writes and the panel reads.

The phone line learns about calls from Asterisk's AMI events, in its own process; it writes this
file (atomically, a few hundred bytes) after every change and every ``HEARTBEAT_SECONDS``, so the
panel shows live calls without importing ``ivr`` and without a database write per AMI event. A file
older than ``STALE_SECONDS`` means the line is not reporting (stopped, or AMI is down).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SNAPSHOT = "live-calls.json"
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 30.0
KIND = {"lesson": "escuchando lecciones", "missed": "llamada perdida (timbrando)",
        "outbound": "pallay la llama", "other": "otra"}


@dataclass(frozen=True)
class LiveCall:
    channel: str  # Asterisk's channel name with any phone number masked
    kind: str  # lesson | missed | outbound | other
    state: str  # Asterisk's state: Ring, Ringing, Up...
    since: str  # UTC ISO timestamp
    listener: str  # first 8 characters of the pseudonym, or ""


@dataclass(frozen=True)
class Snapshot:
    calls: tuple[LiveCall, ...]
    updated_at: dt.datetime | None  # None: the line never wrote one
    stale: bool  # the line stopped reporting


def write(path: Path, calls: list[LiveCall], now: dt.datetime) -> None:
    """Replace the snapshot atomically (a reader never sees half a file)."""
    body = json.dumps({"updated_at": now.astimezone(dt.UTC).isoformat(),
                       "calls": [asdict(c) for c in calls]}, ensure_ascii=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)


def read(path: Path, now: dt.datetime) -> Snapshot:
    """The last snapshot; an absent or unreadable file reads as "not reporting"."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        updated = dt.datetime.fromisoformat(data["updated_at"])
        calls = tuple(LiveCall(**c) for c in data["calls"])
    except FileNotFoundError:
        return Snapshot((), None, True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("live calls snapshot %s unreadable: %s", path, exc)
        return Snapshot((), None, True)
    stale = (now - updated).total_seconds() > STALE_SECONDS
    return Snapshot(() if stale else calls, updated, stale)
