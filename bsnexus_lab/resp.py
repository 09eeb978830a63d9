"""Pure helpers for Redis replies: no I/O, so checks and probes share them.

Replies are read raw (RESP2 lists or RESP3 maps, whichever the server speaks) so that Redis 6.2 and 7.x
go through one parser.
"""

from __future__ import annotations

import json
import re
from typing import Any

# What Redis answers as an entry id: milliseconds and a sequence, both unsigned 64-bit decimal integers.
_ENTRY_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")


def text(value: Any) -> Any:
    """Bytes as text; bytes that are not UTF-8 keep their escapes instead of crashing the probe."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return value


def entry_id(value: Any) -> tuple[int, int]:
    """A stream entry id as a sortable (milliseconds, sequence) pair; anything else is a ValueError naming it
    (``int()`` alone would take " 12", "1_0" or non-ASCII digits for an id)."""
    found = _ENTRY_ID.fullmatch(text(value)) if isinstance(value, str | bytes) else None
    if found is None:
        raise ValueError(f"not a stream entry id: {value!r}")
    return int(found[1]), int(found[2] or 0)


def as_dict(reply: Any) -> dict[str, Any]:
    """A RESP3 map or a RESP2 flat pair list, as a dict with text keys."""
    if isinstance(reply, dict):
        return {text(k): v for k, v in reply.items()}
    return {text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


def decode(value: Any) -> Any:
    """A stream field value as BSNexus wrote it: JSON objects and lists parsed, everything else as text."""
    value = text(value)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than the parser goes
            return value
    return value
