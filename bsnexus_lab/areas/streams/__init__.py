"""The streams area: BSNexus's Redis Streams, their consumer groups and consumers (``lab.streams``).

Another area reads streams through ``pending``, ``bodies`` and ``waiting``: coroutines it runs on its own
Context, so the Redis commands they send are that area's to declare.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.streams import checks as checks  # importing registers the checks
from bsnexus_lab.areas.streams import lag as lag
from bsnexus_lab.areas.streams import trace
from bsnexus_lab.areas.streams.commands import COUNT_SCRIPT, READ_COMMANDS
from bsnexus_lab.areas.streams.facade import Streams
from bsnexus_lab.areas.streams.probes import PENDING_COLUMNS as PENDING_COLUMNS
from bsnexus_lab.areas.streams.probes import bodies as bodies
from bsnexus_lab.areas.streams.probes import pending as pending
from bsnexus_lab.areas.streams.probes import waiting as waiting
from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.timeline import Stage, TraceStep


def collect(streams: Streams) -> dict[str, Any]:
    """The snapshot the stream checks need (no sampling window: triage brings its own)."""
    limit = streams.thresholds.pending_scan_limit
    consumers = streams.consumers()
    pending = streams.pending(limit=limit)
    return {
        "streams.summary": streams.summary(),
        "streams.consumers": consumers,
        "streams.pending": pending,
        "streams.held": streams.held_tasks(consumers),
        "streams.bodies": streams.suspect_bodies(pending),
    }


def sample(streams: Streams, every_s: float, window_s: float) -> Any:
    """Triage's own lag window: every group's backlog, one round trip per tick."""
    return streams.sample(every=every_s, duration=window_s)


def figures() -> Sequence[Callable[..., Any]]:
    """Imported when first drawn, so the CLI never loads matplotlib."""
    from bsnexus_lab.areas.streams import plots

    return (plots.backlog, plots.backlog_over_time, plots.pending_by_consumer, plots.pending_idle, plots.deliveries)


# Fewer default columns for the wide frames, so they fit a laptop screen and a printed page; the hidden
# ones are named under the table and stay in the frame itself.
COLUMNS = {
    "streams.summary": ["stream", "group", "length", "lag", "pending", "consumers", "max_pending_idle_ms"],
    "streams.consumers": ["stream", "group", "consumer", "pending", "idle_ms", "max_pending_idle_ms",
                          "longest_idle_deliveries", "registered"],
    "streams.pending": ["stream", "group", "consumer", "id", "idle_ms", "deliveries"],
}  # fmt: skip

AREA = register(
    Area(
        name="streams",
        facade=Streams,
        thresholds=StreamThresholds(),
        commands=READ_COMMANDS,
        scripts=(COUNT_SCRIPT,),
        collect=collect,
        plots=figures,
        columns=COLUMNS,
        sample=sample,
        samples="streams.samples",
        trace=(TraceStep(Stage.NAME, trace.name), TraceStep(Stage.FIND, trace.find)),
    )
)
