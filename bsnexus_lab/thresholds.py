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

    def replace(self, **changes: Any) -> Thresholds:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            from bsnexus_lab.errors import ConfigError

            known = ", ".join(f.name for f in dataclasses.fields(self))
            raise ConfigError(f"unknown threshold {', '.join(sorted(unknown))}", hint=f"known: {known}")
        return dataclasses.replace(self, **changes)


DEFAULTS = Thresholds()
