"""Every threshold the checks use, in one place, with the reason for its default.

Runbooks and notebooks override them per run: ``DEFAULTS.replace(dead_consumer_idle_s=60)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    # A worker heartbeats every 30 s and its registry key lives 90 s; BSNexus re-reads a consumer's own
    # pending entries at every poll (every few seconds). Entries idle for 5 minutes whose consumer has no
    # registry key belong to a worker that is not coming back.
    dead_consumer_idle_s: float = 300.0
    # The workers row is written at most once a minute (worker:db_heartbeat throttles it): two missed
    # writes mean the worker stopped heartbeating.
    stale_heartbeat_s: float = 120.0
    # A healthy task is delivered once, or a few times when a worker restarts mid-task; an entry redelivered
    # this often keeps killing whoever reads it.
    poison_deliveries: int = 5
    # BSNexus trims its task streams with XTRIM MAXLEN ~ 1000 (events:board ~ 5000): undelivered entries
    # past that are dropped. Warn when the backlog reaches this share of the limit.
    trim_limit: int = 1000
    board_trim_limit: int = 5000
    trim_warning_ratio: float = 0.8
    # Burrow's "allowed lag": a group whose lag reached this value inside the window is OK. BSNexus reads one
    # task per poll, so anything above zero means waiting work.
    allowed_lag: int = 0
    # How many pending entries the runbook scans per group (XPENDING pages of 10,000).
    pending_scan_limit: int = 100_000

    def trim_limit_for(self, stream: str) -> int:
        return self.board_trim_limit if stream == "events:board" else self.trim_limit

    def replace(self, **changes: Any) -> Thresholds:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            from bsnexus_lab.errors import ConfigError

            known = ", ".join(f.name for f in dataclasses.fields(self))
            raise ConfigError(f"unknown threshold {', '.join(sorted(unknown))}", hint=f"known: {known}")
        return dataclasses.replace(self, **changes)


DEFAULTS = Thresholds()
