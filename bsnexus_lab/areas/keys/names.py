"""Key names: the prefix a key is counted under (shown names are masked by :func:`bsnexus_lab.masking.mask_key`).

BSNexus's own key patterns (``shared/BSNEXUS.md``) are recognised first, so ``worker:{id}`` and
``worker:token:{token}`` never merge whatever the depth; other names are split on ``:`` to a depth, with
segments that look like ids (numbers, hex/UUIDs, long token-like strings) collapsed to ``{id}``, and
whatever follows a secret-named segment (``token``, ``session``...) replaced by ``***``.

The audit script applies the same rule inside Redis (``audit.SCAN_SCRIPT``); the patterns below are written
in the common subset of Lua patterns and Python regular expressions so that both sides read one list, and
a test holds the two implementations to the same answers.
"""

from __future__ import annotations

import re

from bsnexus_lab.masking import MASK, SECRET_SEGMENTS

# (pattern, prefix it is counted under); first match wins. Lua-pattern/regex common subset only.
BSNEXUS_PATTERNS: tuple[tuple[str, str], ...] = (
    ("^worker:token:.", "worker:token:{token}"),
    ("^worker:db_heartbeat:[^:]+$", "worker:db_heartbeat:{id}"),
    ("^worker:[^:]+$", "worker:{id}"),
    ("^task:[^:]+:needs_intervention$", "task:{id}:needs_intervention"),
    ("^task:[^:]+:recovery_count$", "task:{id}:recovery_count"),
)
# Patterns BSNexus always writes with a TTL (BSNEXUS.md, "Other Redis keys"): a key here without one is a bug.
MUST_EXPIRE = frozenset(prefix for _, prefix in BSNEXUS_PATTERNS)
ID = "{id}"

_KNOWN = tuple((re.compile(pattern, re.DOTALL), prefix) for pattern, prefix in BSNEXUS_PATTERNS)
_ID = re.compile(r"\d+|[0-9a-fA-F-]{12,}|(?=.*\d)[A-Za-z0-9_-]{20,}", re.ASCII)


def decode(name: bytes | str) -> str:
    """A key name as text; bytes that are not UTF-8 keep their escapes."""
    return name.decode("utf-8", errors="backslashreplace") if isinstance(name, bytes) else name


def prefix(name: bytes | str, depth: int = 2) -> str:
    """The group a key is counted under: a BSNexus pattern, else ``depth`` segments with ids collapsed."""
    text = decode(name)
    for pattern, known in _KNOWN:
        if pattern.search(text):
            return known
    segments = text.split(":")
    out: list[str] = []
    for n, segment in enumerate(segments[:depth]):
        more = n + 1 < len(segments)
        if more and segment.lower() in SECRET_SEGMENTS:
            return ":".join([*out, segment, MASK])
        out.append(ID if _ID.fullmatch(segment) else segment)
    return ":".join(out) + (":*" if len(segments) > depth else "")
