"""The Lab: one target's clients, an event loop, and one facade per registered area (``lab.streams``...).

The Lab knows no area by name: the areas are discovered once, when a Lab is made (:mod:`bsnexus_lab.areas`),
and kept as ``lab.areas``; ``lab.<area>`` is built on first use from the area's facade class and a
:class:`~bsnexus_lab.context.Context`, and ``lab.health()`` is answered by the area that declares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from bsnexus_lab import checks
from bsnexus_lab.areas import Area, areas, default_thresholds, health_area, read_commands, read_scripts
from bsnexus_lab.clients import Clients, Counters, check_sql
from bsnexus_lab.config import Target, resolve
from bsnexus_lab.context import Context
from bsnexus_lab.findings import Finding
from bsnexus_lab.loop import Loop
from bsnexus_lab.thresholds import Thresholds
from bsnexus_lab.trace import Trace, trace


class Lab:
    """Read-only access to one BSNexus deployment. Use :func:`connect` to make one."""

    def __init__(
        self,
        target: Target,
        *,
        allow_writes: bool = False,
        thresholds: Thresholds | Mapping[str, Any] | None = None,
    ) -> None:
        self.areas: Mapping[str, Area] = areas()  # first: __getattr__ reads it
        self.target = target
        self.allow_writes = allow_writes
        self.thresholds = thresholds if isinstance(thresholds, Thresholds) else default_thresholds().replace(thresholds)
        self.journal: list[dict[str, Any]] = []  # every write this Lab made (see streams remediation)
        self._loop = Loop()
        self._clients = Clients(target, allow_writes=allow_writes, commands=read_commands(), scripts=read_scripts())
        self._facades: dict[str, Any] = {}

    def __repr__(self) -> str:
        mode = "read-write" if self.allow_writes else "read-only"
        return f"<Lab {self.target.name} redis={self.target.redis} database={self.target.database} {mode}>"

    def __getattr__(self, name: str) -> Any:
        """``lab.<area>``: the area's facade, made on first use."""
        area = None if name.startswith("_") or name == "areas" else self.areas.get(name)
        if area is None or area.facade is None:
            raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")
        if name not in self._facades:
            ctx = Context(name, self.target, self._clients, self.thresholds, self.journal)
            self._facades[name] = area.facade(ctx, self._loop)
        return self._facades[name]

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(n for n, a in self.areas.items() if a.facade is not None)]

    @property
    def counters(self) -> Counters:
        """What the lab has cost its target so far (round trips, commands)."""
        return self._clients.counters

    def health(self) -> pd.DataFrame:
        """One row per dependency: reachable or not, version, latency. Never raises for a dead server."""
        return getattr(self, health_area(self.areas).name).health()

    def query(self, sql: str, **params: Any) -> pd.DataFrame:
        """Run one read-only SQL statement against the target's database; credential columns come back masked.

        Refused before it is sent: anything but one read, and functions that act although the session is
        read-only (ending sessions, advisory locks, set_config...; see :func:`~bsnexus_lab.clients.check_sql`).
        """
        check_sql(sql)
        return self._loop.run(self._clients.query(sql, params))

    def check(self, frames: Mapping[str, Any], *, area: str | None = None) -> list[Finding]:
        """Run every check (of ``area``, or all) that the frames allow; frames are keyed ``area.probe``."""
        return checks.run(frames, area=area, thresholds=self.thresholds, target=self.target.name)

    def trace(self, id: str, *, stream: str | None = None) -> Trace:
        """One task followed through PostgreSQL, Redis, the logs and the live process: its timeline and what
        is wrong with it (or where it is in its normal life). ``id``: a task id or a unique prefix (4+ hex
        digits), an entry id (``stream/id``, or with ``stream``), or a worker id."""
        return trace(self, id, stream=stream)

    def close(self) -> None:
        self._loop.close(self._clients.aclose())

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    target: str | Target | None = None,
    *,
    allow_writes: bool = False,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    **settings: Any,
) -> Lab:
    """Open a Lab on a profile name, a :class:`Target`, or whatever the environment resolves to.

    Nothing is contacted until the first probe runs. ``thresholds`` overrides defaults by qualified name:
    ``{"streams.dead_consumer_idle_s": 60}``.
    """
    resolved = target if isinstance(target, Target) else resolve(target, **settings)
    return Lab(resolved, allow_writes=allow_writes, thresholds=thresholds)
