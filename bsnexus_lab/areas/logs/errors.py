"""Errors grouped by what they are, not by when: exception type, message shape and logger.

Two failures of one bug differ in their ids, numbers and quoted values; the shape replaces those with
placeholders so the group counts the bug once.
"""

from __future__ import annotations

import re

import pandas as pd

ERROR_LEVELS = ("ERROR", "CRITICAL", "FATAL")
GROUP_COLUMNS = ["exception", "shape", "logger", "count", "first", "last", "files", "example"]
_SHAPES = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\b\d{10,}-\d+\b"), "<entry>"),  # a stream entry id
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "<n>"),
]


def shape(message: str) -> str:
    """The first line of a message with its variable parts replaced: ``Task <uuid> failed after <n> s``."""
    first = message.split("\n", 1)[0]
    for pattern, placeholder in _SHAPES:
        first = pattern.sub(placeholder, first)
    return first


def error_records(records: pd.DataFrame) -> pd.DataFrame:
    """Records at ERROR or above, and any record that carries a traceback."""
    return records[records["level"].isin(ERROR_LEVELS) | records["exception"].notna()]


def grouped(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (exception, shape, logger), most frequent first, with first/last time and an example."""
    errors = error_records(records)
    if errors.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    keyed = errors.assign(
        exception=errors["exception"].fillna("-"), shape=errors["message"].map(shape), file=errors["file"].map(_name)
    )
    groups = keyed.groupby(["exception", "shape", "logger"], sort=False).agg(
        count=("time", "size"),
        first=("time", "min"),
        last=("time", "max"),
        files=("file", lambda names: ", ".join(sorted(set(names)))),
        example=("message", "last"),
    )
    return groups.reset_index().sort_values(["count", "last"], ascending=False, ignore_index=True)[GROUP_COLUMNS]


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
