"""The server area's thresholds, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass

from bsnexus_lab.thresholds import threshold


@dataclass(frozen=True)
class ServerThresholds:
    memory_warning_ratio: float = threshold(
        0.85,
        "Past 85 % of maxmemory a burst of task messages reaches the limit: then noeviction refuses writes "
        "(XADD fails, tasks are not queued) and allkeys-* starts evicting.",
    )
    eviction_critical_ratio: float = threshold(
        0.9,
        "Under allkeys-*, past 90 % of maxmemory the next burst of task messages (or a cache fill) reaches the "
        "limit and Redis starts evicting the least recently used keys: an idle stream (tasks:escalation, an "
        "empty queue) or a worker's registry key between heartbeats goes first. Below it the policy is a "
        "standing risk (a warning), not an incident.",
    )
    registry_key_ttl_s: float = threshold(
        90.0,
        "BSNexus's worker:{id} key lives 90 s after its last heartbeat (as streams.registry_ttl_s): a key gone while "
        "workers.last_heartbeat is younger than this did not expire, it was evicted (or deleted).",
    )
    clients_warning_ratio: float = threshold(
        0.8, "At 80 % of maxclients a restart storm of workers and backend pools gets connections refused."
    )
    blocked_clients_info: int = threshold(
        100,
        "BSNexus blocks in XREADGROUP up to 5 s per worker poll, so one blocked client per polling worker is "
        "normal; this many means far more pollers than workers.",
    )
    slow_command_ms: float = threshold(
        100.0, "A command over 100 ms stalls every other client (Redis is single-threaded): worth a warning."
    )
    slow_window_s: float = threshold(3600.0, "Only SLOWLOG entries of the last hour count: older ones are history.")
    latency_spike_ms: int = threshold(100, "LATENCY LATEST events over 100 ms (fork, AOF fsync, expiry) stall clients.")
