"""Words for people: counts with the right noun form, durations as an engineer says and writes them."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from bsnexus_lab.errors import ConfigError

MISSING = "–"  # the one way a missing value is shown, whatever pandas holds (NaN, <NA>, None, NaT)
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w|)\s*")
_UNITS = {"ms": 0.001, "": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 pending entry``, ``3 pending entries``."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def duration(seconds: float | None) -> str:
    """Seconds as people say them: "340 ms", "4 s", "45 s", "15 min", "2 h 5 min", "3 d 2 h".

    Milliseconds below a second, whole seconds up to 90 s and whole minutes up to 90 min, so the figures in
    finding titles stay short and read as they always have ("the oldest for 6 s"). None or NaN (no such time)
    is :data:`MISSING`.
    """
    if seconds is None or math.isnan(seconds):
        return MISSING
    s = abs(float(seconds))
    sign = "-" if seconds < 0 else ""
    if 0 < s < 1:
        return f"{sign}{s * 1000:.1f} ms" if s < 0.01 else f"{sign}{s * 1000:.0f} ms"
    if s < 90:
        return f"{sign}{s:.0f} s"
    if s < 90 * 60:
        return f"{sign}{s / 60:.0f} min"
    if s < 48 * 3600:
        hours, minutes = divmod(round(s / 60), 60)
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(round(s / 3600), 24)
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"


def is_duration(text: str) -> bool:
    """Does the text name a duration with its unit (``500ms``, ``10s``, ``5m``, ``2h``, ``7d``)?"""
    match = _DURATION.fullmatch(text)
    return match is not None and match[2] != ""


def parse_duration(text: str) -> timedelta:
    """``500ms``, ``90s``, ``15m`` (or ``15min``), ``12h``, ``30d``, ``2w``, or a bare number of seconds."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ConfigError(f"not a duration: {text!r}", hint="write it like 30m, 12h, 7d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
