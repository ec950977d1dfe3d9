"""Attract mode: when the kiosk is idle, a short invitation every few minutes, except at night."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from audio_lessons.errors import ConfigError


def parse_hours(text: str) -> tuple[dt.time, dt.time] | None:
    """ "21:00-07:00" as (start, end); "" means never quiet. ConfigError if malformed."""
    if not text.strip():
        return None
    try:
        start, end = (dt.time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError as exc:
        raise ConfigError(f"kiosk.quiet_hours: expected HH:MM-HH:MM, got {text!r}") from exc
    return start, end


def is_quiet(hours: tuple[dt.time, dt.time] | None, at: dt.time) -> bool:
    """Whether ``at`` falls in the quiet hours (which may run past midnight)."""
    if hours is None:
        return False
    start, end = hours
    if start <= end:
        return start <= at < end
    return at >= start or at < end


@dataclass(frozen=True)
class Attract:
    """When to invite: every ``every_s`` seconds of idleness, never in the quiet hours."""

    every_s: float
    quiet: tuple[dt.time, dt.time] | None
    timezone: ZoneInfo

    @classmethod
    def from_settings(cls, kiosk) -> Attract:
        try:
            zone = ZoneInfo(kiosk.timezone)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError
            raise ConfigError(f"kiosk.timezone: unknown time zone {kiosk.timezone!r}") from exc
        return cls(kiosk.attract_minutes * 60, parse_hours(kiosk.quiet_hours), zone)

    def allowed(self, now: dt.datetime) -> bool:
        """Whether an invitation may play at the (aware) moment ``now``."""
        return self.every_s > 0 and not is_quiet(self.quiet, now.astimezone(self.timezone).time())
