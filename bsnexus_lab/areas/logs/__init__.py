"""The logs area: BSNexus's own log files read into frames, errors grouped, correlated with stream evidence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.logs import checks as checks  # importing registers the checks
from bsnexus_lab.areas.logs import trace
from bsnexus_lab.areas.logs.facade import Logs
from bsnexus_lab.areas.logs.thresholds import LogsThresholds
from bsnexus_lab.timeline import Stage, TraceStep


def collect(logs: Logs) -> dict[str, Any]:
    """The last ``window_s`` of the target's logs; nothing when the target names no log files."""
    if not logs.target.log_files:
        return {}
    return {"logs.records": logs.read(since=timedelta(seconds=logs.thresholds.window_s))}


def figures() -> Sequence[Callable[..., Any]]:
    """Imported when first drawn, so the CLI never loads matplotlib."""
    from bsnexus_lab.areas.logs import plots

    return (plots.errors_over_time,)


AREA = register(
    Area(
        name="logs",
        facade=Logs,
        thresholds=LogsThresholds(),
        collect=collect,
        plots=figures,
        trace=(TraceStep(Stage.AROUND, trace.around),),
    )
)
