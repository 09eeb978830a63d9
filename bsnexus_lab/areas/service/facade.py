"""``lab.service``: the service over HTTP, as plain calls."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.areas.service import probes, stats
from bsnexus_lab.context import Facade


class Service(Facade):
    """``lab.service``: the BSNexus backend's own view of itself, and how fast it answers."""

    def health(self) -> pd.DataFrame:
        """``/health`` and ``/health/deps``: one row per component with its status, HTTP status and latency."""
        return self._run(probes.health(self._ctx))

    def latency(self, path: str = "/health", n: int = 50, concurrency: int = 5) -> pd.DataFrame:
        """``n`` GETs of ``path``, ``concurrency`` at a time: one row per request (see ``percentiles``)."""
        return self._run(probes.latency(self._ctx, path, n, concurrency))

    def percentiles(self, requests: pd.DataFrame) -> pd.DataFrame:
        """Per path: requests, failures, status codes and p50/p90/p95/p99/max latency."""
        return stats.percentiles(requests)

    def validation_errors(self, requests: pd.DataFrame) -> pd.DataFrame:
        """FastAPI 422 responses' validation errors as a table."""
        return probes.validation_errors(requests)
