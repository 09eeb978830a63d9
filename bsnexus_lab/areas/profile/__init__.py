"""The profile area: the running service seen from outside (py-spy, memray, psutil) and code profiled in the
notebook (cProfile, tracemalloc) (``lab.profile``)."""

from __future__ import annotations

from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.profile import checks as checks  # importing registers the checks
from bsnexus_lab.areas.profile.facade import Profile
from bsnexus_lab.areas.profile.thresholds import ProfileThresholds


def collect(profile: Profile) -> dict[str, Any]:
    """The quick picture for triage: the service's processes (no capture); nothing when none is configured."""
    if profile._ctx.target.process is None:
        return {}
    return {"profile.processes": profile.processes()}


AREA = register(Area(name="profile", facade=Profile, thresholds=ProfileThresholds(), collect=collect))
