"""The streams area: BSNexus's Redis Streams, their consumer groups and consumers (``lab.streams``).

Another area reads streams through ``pending``, ``bodies`` and ``waiting``: coroutines it runs on its own
Context, so the Redis commands they send are that area's to declare.
"""

from __future__ import annotations

from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.streams import checks as checks  # importing registers the checks
from bsnexus_lab.areas.streams import lag as lag
from bsnexus_lab.areas.streams.commands import COUNT_SCRIPT, READ_COMMANDS
from bsnexus_lab.areas.streams.facade import Streams
from bsnexus_lab.areas.streams.probes import PENDING_COLUMNS as PENDING_COLUMNS
from bsnexus_lab.areas.streams.probes import bodies as bodies
from bsnexus_lab.areas.streams.probes import pending as pending
from bsnexus_lab.areas.streams.probes import waiting as waiting
from bsnexus_lab.areas.streams.thresholds import StreamThresholds


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


AREA = register(
    Area(
        name="streams",
        facade=Streams,
        thresholds=StreamThresholds(),
        commands=READ_COMMANDS,
        scripts=(COUNT_SCRIPT,),
        collect=collect,
    )
)
