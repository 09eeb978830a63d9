"""The profile area's thresholds, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass

from bsnexus_lab.thresholds import threshold


@dataclass(frozen=True)
class ProfileThresholds:
    min_samples: int = threshold(
        50, "below half a second of samples at 100 Hz a share is noise; capture longer before concluding"
    )
    hotspot_share: float = threshold(
        0.3, "one function holding 30 % of the on-CPU samples by itself is where the time goes, not a flat profile"
    )
    hotspot_min_cores: float = threshold(
        0.2, "a dominant function using under a fifth of a core costs little; a quiet service is not a hot one"
    )
    hotspot_critical_cores: float = threshold(
        0.9, "an asyncio service runs its requests on one thread: one function near a whole core starves the rest"
    )
    stall_share: float = threshold(
        0.2,
        "the loop inside one call for a fifth of the time: every other request waits that long (asyncio "
        "debug mode already warns at 100 ms per step)",
    )
    stall_critical_share: float = threshold(0.6, "the loop blocked most of the time: the service barely answers")
    leak_min_mb: float = threshold(
        1.0, "allocations of one stack still alive after the capture; a healthy request path frees what it takes"
    )
    leak_min_allocations: int = threshold(
        10, "a leak grows by repeated allocations; one big buffer alive at the end is an I/O buffer or a warm-up"
    )
    leak_critical_mb: float = threshold(
        100.0, "20 % of BSNexus's 512 MB Redis-sized containers retained within one capture window"
    )
    rss_growth_mb: float = threshold(
        32.0, "RSS wanders by a few MiB with allocator caches; tens of MiB within a window is growth"
    )
    rss_growth_ratio: float = threshold(
        0.1, "and at least a tenth of where it started, so big processes are not flagged"
    )
