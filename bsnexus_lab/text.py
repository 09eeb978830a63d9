"""Words for people: counts with the right noun form, durations as an engineer says them."""

from __future__ import annotations


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 pending entry``, ``3 pending entries``."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def duration(seconds: float) -> str:
    """``45 s``, ``15 min``, ``2.5 h``, ``3.0 d``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def first_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type's name when it has no message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
