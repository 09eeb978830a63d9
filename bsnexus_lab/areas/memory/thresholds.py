"""The memory area's thresholds, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass

from bsnexus_lab.thresholds import threshold


@dataclass(frozen=True)
class MemoryThresholds:
    limit_warning_h: float = threshold(
        24.0, "Reaching maxmemory within a day at the current growth leaves one working day to act."
    )
    limit_critical_h: float = threshold(1.0, "Within the hour: act now.")
    limit_min_growth_bytes: int = threshold(
        1024 * 1024,
        "Growth under 1 MiB across the window is within the noise of client buffers and the allocator: a few "
        "seconds of it must not project a limit.",
    )
    stream_growth_min_entries: int = threshold(
        10,
        "A stream counts as growing without trimming once it gained at least this many entries over the window "
        "and never shrank (BSNexus's trim_streams() is never called by default).",
    )
    usage_samples: int = threshold(
        5, "MEMORY USAGE ... SAMPLES per stream per tick: Redis's default, O(samples) whatever the stream's length."
    )
