"""Areas: each subject the lab diagnoses (streams, db, keys, profile, logs...) is a subpackage here that
registers itself, so adding one edits nothing in the centre.

An area's ``__init__`` calls :func:`register` with an :class:`Area`: its facade (``lab.<name>``), its
thresholds, the Redis read commands and read-only scripts it sends (the guard allows their union and
nothing else), and optionally ``collect``, its quick standard snapshot for triage, and ``environment``, the
facts a run records about what it ran against (versions, policies; see :func:`bsnexus_lab.artefacts.environment`),
and ``trace``, its steps in following one task (:mod:`bsnexus_lab.timeline`). It also declares what the centre
needs from it, so the centre never names an area: its plots, the columns its wide frames show by default, the
samples triage takes and keeps, and its part in reachability. :func:`areas` imports every subpackage once (the
Lab does, when it is made) and returns the registry, which is read-only from then on.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

from bsnexus_lab.thresholds import Thresholds
from bsnexus_lab.timeline import TraceStep

_REGISTERED: dict[str, Area] = {}


class Reachability(enum.StrEnum):
    """An area's part in "can the lab reach the target at all", which is asked before anything else."""

    HEALTH = "health"  # its facade's ``health()`` is ``lab.health()``: one row per dependency, asked first
    FIRST = "first"  # collected right after that, before every other area (a service's own health endpoints)


@dataclass(frozen=True)
class Area:
    name: str
    facade: type | None = None  # a context.Facade subclass, exposed as lab.<name>
    thresholds: Any = None  # a frozen dataclass of the area's thresholds, at their defaults
    commands: frozenset[str] = frozenset()  # Redis read commands the area sends ("XINFO.STREAM")
    scripts: tuple[str, ...] = ()  # read-only Lua scripts the area sends, as exact text
    collect: Callable[[Any], dict[str, Any]] | None = None  # facade -> {"area.frame": frame} for triage
    # What the centre needs from the area (magics, display, triage, lab.health()); it names no area itself.
    plots: Callable[[], Sequence[Callable[..., Any]]] | None = None  # () -> the figures %lab draws from frames
    columns: Mapping[str, Sequence[str]] = field(default_factory=dict)  # "area.frame" -> columns shown by default
    sample: Callable[[Any, float, float], Any] | None = None  # (facade, every_s, window_s) -> a started Sampler
    samples: str = ""  # the frame name ``sample``'s rows are checked under and kept in the history as
    reachability: Reachability | None = None  # its part in "is the target reachable", asked before anything else
    environment: Callable[[Any], dict[str, Any]] | None = None  # facade -> {"redis_version": "7.2.4"} for run.json
    trace: tuple[TraceStep, ...] = ()  # its steps in lab.trace(id), each run at its stage (see bsnexus_lab.timeline)


def register(area: Area) -> Area:
    if area.name in _REGISTERED and _REGISTERED[area.name] != area:
        raise ValueError(f"area {area.name!r} registered twice")
    if (area.sample is None) != (not area.samples):
        raise ValueError(f"area {area.name!r}: a sampler and the frame name of its samples go together")
    _REGISTERED[area.name] = area
    return area


@cache
def areas() -> Mapping[str, Area]:
    """Every area, discovered by importing this package's subpackages; read-only."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return MappingProxyType(dict(sorted(_REGISTERED.items())))


@cache
def read_commands() -> frozenset[str]:
    return frozenset().union(*(a.commands for a in areas().values()))


@cache
def read_scripts() -> frozenset[str]:
    return frozenset(s for a in areas().values() for s in a.scripts)


def default_thresholds() -> Thresholds:
    return Thresholds({name: a.thresholds for name, a in areas().items() if a.thresholds is not None})


def health_area(registry: Mapping[str, Area]) -> Area:
    """The area whose facade answers ``lab.health()``."""
    found = [a for a in registry.values() if a.reachability is Reachability.HEALTH]
    if len(found) != 1:
        raise ValueError(f"exactly one area answers lab.health(), not {len(found)}")
    return found[0]


def reachability_first(registry: Mapping[str, Area]) -> list[Area]:
    """The areas in the order triage collects them: reachability (health, then first) before the rest."""
    order = {Reachability.HEALTH: 0, Reachability.FIRST: 1, None: 2}
    return sorted(registry.values(), key=lambda a: order[a.reachability])
