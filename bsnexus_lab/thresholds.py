"""Thresholds: each area declares its own (with the reason for every default); this is the one view of all.

An area's thresholds are a frozen dataclass whose fields are made with :func:`threshold`; checks receive
their own area's. Override per Lab: ``bl.connect(thresholds={"streams.dead_consumer_idle_s": 60})``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from bsnexus_lab.errors import ConfigError


def threshold(default: Any, why: str) -> Any:
    """A threshold field: its default and the reason for it, shown by :meth:`Thresholds.table`."""
    return dataclasses.field(default=default, metadata={"why": why})


class Thresholds:
    """Every area's thresholds: ``thresholds.streams.poison_deliveries``; immutable, ``replace`` copies."""

    def __init__(self, areas: Mapping[str, Any]) -> None:
        self._areas = dict(areas)

    def __getattr__(self, area: str) -> Any:
        try:
            return self.__dict__["_areas"][area]
        except KeyError:
            raise AttributeError(f"no thresholds for area {area!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._areas)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._areas]

    def __repr__(self) -> str:
        return f"<Thresholds {', '.join(self._areas)}>"

    def replace(self, changes: Mapping[str, Any] | None = None) -> Thresholds:
        """A copy with ``{"area.name": value}`` changed; an unknown name is a :class:`ConfigError`."""
        areas = dict(self._areas)
        for qualified, value in (changes or {}).items():
            area, _, name = qualified.partition(".")
            current = areas.get(area)
            known = {f.name for f in dataclasses.fields(current)} if current is not None else set()
            if name not in known:
                listed = ", ".join(f"{a}.{f.name}" for a, t in self._areas.items() for f in dataclasses.fields(t))
                raise ConfigError(f"unknown threshold {qualified!r}", hint=f"known: {listed}")
            areas[area] = dataclasses.replace(current, **{name: value})
        return Thresholds(areas)

    def table(self) -> pd.DataFrame:
        """Every threshold with its current value, default and reason."""
        rows = [
            {
                "threshold": f"{area}.{f.name}",
                "value": getattr(values, f.name),
                "default": f.default,
                "why": f.metadata.get("why", ""),
            }
            for area, values in self._areas.items()
            for f in dataclasses.fields(values)
        ]
        return pd.DataFrame(rows, columns=["threshold", "value", "default", "why"])
