"""Areas: each subject the lab diagnoses (streams, db, keys, profile, logs...) is a subpackage here that
registers itself, so adding one edits nothing in the centre.

An area's ``__init__`` calls :func:`register` with an :class:`Area`: its facade (``lab.<name>``), its
thresholds, the Redis read commands and read-only scripts it sends (the guard allows their union and
nothing else), and optionally ``collect``, its quick standard snapshot for triage, and ``environment``, the
facts a run records about what it ran against (versions, policies; see
:func:`bsnexus_lab.artefacts.environment`). :func:`areas` imports every subpackage once and returns the
registry, which is read-only from then on.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from bsnexus_lab.thresholds import Thresholds

_REGISTERED: dict[str, Area] = {}


@dataclass(frozen=True)
class Area:
    name: str
    facade: type | None = None  # a context.Facade subclass, exposed as lab.<name>
    thresholds: Any = None  # a frozen dataclass of the area's thresholds, at their defaults
    commands: frozenset[str] = frozenset()  # Redis read commands the area sends ("XINFO.STREAM")
    scripts: tuple[str, ...] = ()  # read-only Lua scripts the area sends, as exact text
    collect: Callable[[Any], dict[str, Any]] | None = None  # facade -> {"area.frame": frame} for triage
    environment: Callable[[Any], dict[str, Any]] | None = None  # facade -> {"redis_version": "7.2.4"} for run.json


def register(area: Area) -> Area:
    if area.name in _REGISTERED and _REGISTERED[area.name] != area:
        raise ValueError(f"area {area.name!r} registered twice")
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
