"""``lab.memory``: Redis memory (and optionally the service's RSS/CPU) sampled over time, and its projection."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from bsnexus_lab.areas.memory import probes
from bsnexus_lab.context import Facade
from bsnexus_lab.sampler import Sampler


class Memory(Facade):
    """``lab.memory``: how fast Redis fills up, and how long until maxmemory."""

    def sample(
        self,
        every: float = 1.0,
        duration: float | None = 60.0,
        pid: int | None = None,
        streams: str | Iterable[str] | None = None,
    ) -> Sampler:
        """Start sampling used memory, evictions and each stream (+ the process ``pid``'s RSS/CPU) in the background."""
        names = [streams] if isinstance(streams, str) else list(streams or self._ctx.target.streams)
        tick = probes.MemoryTick(self._ctx, names, pid, self.thresholds.usage_samples)
        return Sampler(
            self._loop,
            tick,
            every=every,
            duration=duration,
            columns=probes.TICK_COLUMNS,
            counts=probes.COUNTS,
            scrub=self._ctx.target.scrub,
            label="redis memory" + (f" + pid {pid}" if pid else ""),
        ).start()

    def projection(self, samples: pd.DataFrame) -> pd.DataFrame:
        """Growth per hour of used memory and each stream; hours until maxmemory at that pace."""
        return probes.projection(samples)
