"""``lab.server``: the Redis server's own view of itself."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.areas.server import probes
from bsnexus_lab.context import Facade


class Server(Facade):
    """``lab.server``: INFO, the settings that matter, SLOWLOG, LATENCY and the connected clients."""

    def info(self) -> pd.DataFrame:
        """Memory vs maxmemory, fragmentation, evictions, hits, clients, persistence, replication (typed)."""
        return self._run(probes.info(self._ctx))

    def config_audit(self) -> pd.DataFrame:
        """maxmemory, its policy, persistence and limits, with what we recommend for BSNexus and why."""
        return self._run(probes.config_audit(self._ctx))

    def slowlog(self, count: int = 128) -> pd.DataFrame:
        """The last ``count`` slow commands (key names masked; the lab's own marked)."""
        return self._run(probes.slowlog(self._ctx, count))

    def latency(self) -> pd.DataFrame:
        """LATENCY LATEST: the latest and worst spike per event, and whether the monitor is on."""
        return self._run(probes.latency(self._ctx))

    def clients(self) -> pd.DataFrame:
        """CLIENT LIST grouped by name and host: BSNexus's connections apart from the lab's own."""
        return self._run(probes.clients(self._ctx))
