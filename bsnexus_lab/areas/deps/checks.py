"""Dependencies that are down."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Kind, Severity


@check("deps.unreachable", "Unreachable dependencies", kind=Kind.CAUSE)
def unreachable(health: pd.DataFrame, thresholds: object) -> list[Finding]:
    return [
        Finding(
            check="deps.unreachable",
            severity=Severity.CRITICAL,
            title=f"{row.dependency} is unreachable",
            evidence={"url": row.url, "error": row.error},
            subject=(row.dependency,),
            scope=frozenset({f"dep:{row.dependency}"}),
            remedy=f"Restore {row.dependency}: BSNexus's /health/deps reports it disconnected while it is down.",
        )
        for row in health.itertuples()
        if not row.reachable
    ]
