"""Pure helpers for Redis replies: no I/O, so checks and probes share them.

Replies are read raw (RESP2 lists or RESP3 maps, whichever the server speaks) so that Redis 6.2 and 7.x
go through one parser.
"""

from __future__ import annotations

import json
from typing import Any


def text(value: Any) -> Any:
    """Bytes as text; bytes that are not UTF-8 keep their escapes instead of crashing the probe."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return value


def entry_id(value: Any) -> tuple[int, int]:
    """A stream entry id as a sortable (milliseconds, sequence) pair."""
    ms, _, seq = text(value).partition("-")
    return int(ms), int(seq or 0)


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
        except ValueError:
            return value
    return value
