"""Dependencies that are down."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.checks import register
from bsnexus_lab.findings import Finding, Severity
from bsnexus_lab.thresholds import Thresholds


@register("deps.unreachable", "Unreachable dependencies")
def unreachable(health: pd.DataFrame, thresholds: Thresholds) -> list[Finding]:
    return [
        Finding(
            check="deps.unreachable",
            severity=Severity.CRITICAL,
            title=f"{row.dependency} is unreachable",
            evidence={"url": row.url, "error": row.error},
            remedy=f"Restore {row.dependency}: BSNexus's /health/deps reports it disconnected while it is down.",
        )
        for row in health.itertuples()
        if not row.reachable
    ]
