"""What a trace passes between the areas: the :class:`Subject` followed, and each area's :class:`Part` of it.

A trace (:mod:`bsnexus_lab.trace`) asks every area that declares :class:`TraceStep`\\ s, in :class:`Stage`
order, and hands each the subject as the earlier steps left it: what the user typed becomes ids (NAME), the
ids become rows with times (ROW), the rows' ids and times find the task in the stores (FIND), and what was
found is read around (AROUND: logs, the live process, the backend's sessions). This module imports no area
and no workflow, so both can import it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from bsnexus_lab.findings import Unavailable

EVENT_COLUMNS = ["time", "source", "event", "detail"]


class Stage(enum.IntEnum):
    NAME = 0  # what was typed -> ids (an entry's body names its task)
    ROW = 1  # ids -> rows and their times (the task, its history, its workers)
    FIND = 2  # ids and times -> where the task is in the stores (stream entries, keys)
    AROUND = 3  # what was found -> what surrounds it (log records, the live process, database sessions)


@dataclass(frozen=True)
class Subject:
    """What a trace follows, as far as it is known so far. Steps add to it; none removes."""

    query: str  # what the user typed
    stream: str | None = None  # with an entry id: the stream it is in
    task_id: str | None = None
    worker_id: str | None = None  # a trace of a worker (a consumer name), not of one task
    entries: tuple[tuple[str, str], ...] = ()  # (stream, entry id) that name the task
    consumers: tuple[tuple[str, str, str], ...] = ()  # (stream, group, consumer) holding or meant to hold them
    times: tuple[datetime, ...] = ()  # the row's own times (UTC), around which the stores are searched
    facts: Mapping[str, Any] = field(default_factory=dict)  # {"status": "queued", "title": ...}

    def with_(self, **changes: Any) -> Subject:
        """This subject with ``changes``; ``facts`` are merged, tuples of ids extended without repeats."""
        merged: dict[str, Any] = {}
        for name, value in changes.items():
            old = getattr(self, name)
            if name == "facts":
                merged[name] = {**old, **value}
            elif isinstance(old, tuple) and name != "times":
                merged[name] = tuple(dict.fromkeys([*old, *value]))
            elif name == "times":
                merged[name] = tuple(sorted({*old, *value}))
            else:
                merged[name] = value
        return dataclasses.replace(self, **merged)

    @property
    def found(self) -> bool:
        """A row, a worker or an entry knows it (a well-formed id alone is not a task)."""
        return bool(self.facts.get("status") or self.worker_id or self.entries)


@dataclass(frozen=True)
class Part:
    """One step's contribution: timeline rows, frames for the checks, scope tokens, and what it could not see.

    ``frames`` are keyed as everywhere (``"streams.consumers"``) and checked together; of the findings, the
    trace keeps those whose scope meets ``scope`` of some part (the task, its entries, its consumers...).
    ``stage`` is where the task is in its normal life when this part can tell (``{"stage": "executing", "text":
    "executing on worker W for 4 min", "since_s": 240}``).
    """

    events: pd.DataFrame | None = None
    frames: Mapping[str, Any] = field(default_factory=dict)
    scope: frozenset[str] = frozenset()
    subject: Subject | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    unavailable: tuple[tuple[str, Unavailable], ...] = ()  # (what, why): "not checked" lines of the verdict


@dataclass(frozen=True)
class TraceStep:
    """An area's part in a trace: ``follow(ctx, subject)``, a coroutine returning a :class:`Part`, run at
    ``stage`` on the area's :class:`~bsnexus_lab.context.Context` (like a probe)."""

    stage: Stage
    follow: Callable[[Any, Subject], Awaitable[Part]]


def events(rows: list[dict[str, Any]], source: str) -> pd.DataFrame:
    """Timeline rows (``time``, ``event``, ``detail``) from one source, times as UTC timestamps."""
    frame = pd.DataFrame([{"source": source, **r} for r in rows], columns=EVENT_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame
