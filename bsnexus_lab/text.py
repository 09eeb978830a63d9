"""Words for people: counts with the right noun form, durations, sizes and shares as an engineer says them.

:func:`in_units` is the one place that reads a unit off a name (``idle_ms``, ``used_memory``, ``hit_ratio``): the
frame displays and every rendering of findings' evidence use it, so a value never shows as raw bytes.
"""

from __future__ import annotations

import math
import numbers
import re
from datetime import timedelta
from typing import Any

from bsnexus_lab.errors import ConfigError

MISSING = "–"  # the one way a missing value is shown, whatever pandas holds (NaN, <NA>, None, NaT)
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w|)\s*")
_UNITS = {"ms": 0.001, "": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
# Names ending in one of these hold a duration in that unit (seconds per unit). Bare ``age`` and ``idle`` are
# seconds too; ``xid_age`` is not in time (PostgreSQL counts it in transactions), hence exact names only.
DURATION_SUFFIXES = {"_ms": 0.001, "_seconds": 1.0, "_s": 1.0}
_DURATION_NAMES = {"age", "idle"}
_SIZE_SUFFIXES = {"bytes": 1, "used_memory": 1, "maxmemory": 1, "_mb": 1024**2}  # bytes per unit
_SHARE_SUFFIXES = ("_ratio", "_share")


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 pending entry``, ``3 pending entries``."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def duration(seconds: float | None, *, precise: bool = False) -> str:
    """Seconds as people say them: "340 ms", "4 s", "45 s", "15 min", "2 h 5 min", "3 d 2 h".

    Milliseconds below a second, whole seconds up to 90 s and whole minutes up to 90 min, so the figures in
    finding titles stay short and read as they always have ("the oldest for 6 s"). ``precise`` keeps the
    seconds between 90 s and 90 min ("2 min 30 s"), for evidence set against a threshold. None or NaN (no such
    time) is :data:`MISSING`.
    """
    if seconds is None or math.isnan(seconds):
        return MISSING
    s = abs(float(seconds))
    sign = "-" if seconds < 0 else ""
    if 0 < s < 1:
        return f"{sign}{s * 1000:.1f} ms" if s < 0.01 else f"{sign}{s * 1000:.0f} ms"
    if s <= 90:
        return f"{sign}{s:.0f} s"
    if s < 90 * 60:
        minutes, rest = divmod(round(s), 60)
        if precise and rest:
            return f"{sign}{minutes} min {rest} s"
        return f"{sign}{s / 60:.0f} min"
    if s < 48 * 3600:
        hours, minutes = divmod(round(s / 60), 60)
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(round(s / 3600), 24)
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"


def size(count: float) -> str:
    """Bytes as people read them: ``122880`` -> "120 KiB", ``1536`` -> "1.5 KiB"."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = 0
    while abs(count) >= 1024 and power < len(units) - 1:
        count /= 1024
        power += 1
    return f"{count:.0f} {units[power]}" if power == 0 or abs(count) >= 10 else f"{count:.1f} {units[power]}"


def percent(ratio: float) -> str:
    """A fraction as a percentage with one decimal: ``0.003`` -> "0.3 %", ``0.9876`` -> "98.8 %"."""
    return f"{ratio * 100:.1f} %"


def number(value: float) -> str:
    """A plain number: "12,345", "1", "0.25" (never "1.0", never sixteen decimals)."""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def in_units(name: str, value: Any, *, precise: bool = False) -> str | None:
    """A number in the unit its name implies (durations, sizes, shares), or None when the name implies none.

    ``idle_ms`` 150000 -> "150 s" (precise: "2 min 30 s"), ``used_memory`` 1048576 -> "1.0 MiB",
    ``hit_ratio`` 0.5 -> "50.0 %".
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(value):
        return None
    for suffix, unit in DURATION_SUFFIXES.items():
        if name.endswith(suffix):
            return duration(value * unit, precise=precise)
    if name in _DURATION_NAMES:
        return duration(value, precise=precise)
    for suffix, unit in _SIZE_SUFFIXES.items():
        if name.endswith(suffix):
            return size(value * unit)
    if name.endswith(_SHARE_SUFFIXES):
        return percent(value)
    return None


def label(name: str) -> str:
    """``oldest_pending_idle_ms`` -> "oldest pending idle": the unit moves into the values (:func:`in_units`)."""
    for suffix in (*DURATION_SUFFIXES, "_mb"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ")


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
