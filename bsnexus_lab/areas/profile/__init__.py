"""The profile area: the running service seen from outside (py-spy, memray, psutil) and code profiled in the
notebook (cProfile, tracemalloc) (``lab.profile``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.profile import checks as checks  # importing registers the checks
from bsnexus_lab.areas.profile import trace
from bsnexus_lab.areas.profile.facade import Profile
from bsnexus_lab.areas.profile.processes import main_pid as main_pid  # the service's pid, for other areas
from bsnexus_lab.areas.profile.thresholds import ProfileThresholds
from bsnexus_lab.timeline import Stage, TraceStep


def collect(profile: Profile) -> dict[str, Any]:
    """The quick picture for triage: the service's processes (no capture); nothing when none is configured."""
    if profile.target.process is None:
        return {}
    return {"profile.processes": profile.processes()}


def figures() -> Sequence[Callable[..., Any]]:
    """Imported when first drawn, so the CLI never loads matplotlib."""
    from bsnexus_lab.areas.profile import plots

    return (plots.memory_over_time,)


AREA = register(
    Area(
        name="profile",
        facade=Profile,
        thresholds=ProfileThresholds(),
        collect=collect,
        plots=figures,
        trace=(TraceStep(Stage.AROUND, trace.around),),
    )
)
