"""The deps area: are Redis and PostgreSQL reachable at all (``lab.health()``, ``deps.unreachable``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bsnexus_lab.areas import Area, Reachability, register
from bsnexus_lab.areas.deps import checks as checks  # importing registers the checks
from bsnexus_lab.areas.deps.reachability import reachability
from bsnexus_lab.context import Facade


class Deps(Facade):
    """``lab.deps``: reachability of the target's dependencies."""

    def health(self) -> pd.DataFrame:
        """One row per dependency: reachable or not, version, latency. Never raises for a dead server."""
        return self._run(reachability(self._ctx))


def collect(deps: Deps) -> dict[str, Any]:
    return {"deps.health": deps.health()}


def environment(deps: Deps) -> dict[str, Any]:
    """The versions of the dependencies that answered."""
    names = {"redis": "redis_version", "postgresql": "postgresql_version"}
    return {names[r.dependency]: r.version for r in deps.health().itertuples() if r.reachable and r.dependency in names}


AREA = register(
    Area(
        name="deps",
        facade=Deps,
        commands=frozenset({"INFO"}),
        collect=collect,
        reachability=Reachability.HEALTH,
        environment=environment,
    )
)
