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


@check(
    "deps.lost_during_run", "Dependencies lost during the run", kind=Kind.CAUSE, inputs={"samples": "streams.samples"}
)
def lost_during_run(
    health: pd.DataFrame,
    thresholds: object,
    samples: pd.DataFrame | None = None,
    health_after: pd.DataFrame | None = None,
) -> list[Finding]:
    """A server that answered when the run began and then did not: sampler gaps (Redis) or the closing probe.

    Without this, a run whose Redis died at second 10 reports "Unreachable dependencies: none found" and a lag
    verdict from the few samples taken before.
    """
    up_at_start = set(health.loc[health["reachable"].astype(bool), "dependency"])
    findings = []
    gaps = _gaps(samples)
    if "redis" in up_at_start and gaps is not None:
        findings.append(gaps)
    if health_after is not None:
        for row in health_after.itertuples():
            if row.dependency in up_at_start and not row.reachable and not (row.dependency == "redis" and gaps):
                findings.append(_lost(row.dependency, {"url": row.url, "error": row.error, "recovered": False}))
    return findings


def _gaps(samples: pd.DataFrame | None) -> Finding | None:
    """Sampler gap rows (a tick whose Redis round trip failed) as one finding about Redis."""
    if samples is None or "error" not in samples or samples.empty:
        return None
    ticks = samples.reset_index().drop_duplicates("time")
    failed = ticks[ticks["error"].notna()]
    if failed.empty:
        return None
    recovered = bool(ticks["error"].isna().iloc[-1])
    return _lost(
        "redis",
        {
            "failed_samples": len(failed),
            "samples": len(ticks),
            "first_gap": str(failed["time"].iloc[0]),
            "last_gap": str(failed["time"].iloc[-1]),
            "error": str(failed["error"].iloc[0]),
            "recovered": recovered,
        },
    )


def _lost(dependency: str, evidence: dict[str, object]) -> Finding:
    name = {"redis": "Redis", "postgresql": "PostgreSQL"}.get(dependency, dependency)
    if "failed_samples" in evidence:
        how = f"{evidence['failed_samples']} of {evidence['samples']} samples failed"
        how += ", then it answered again" if evidence["recovered"] else ", and it had not come back at the end"
    else:
        how = "it answered when the run began and not at the end"
    return Finding(
        check="deps.lost_during_run",
        severity=Severity.WARNING if evidence["recovered"] else Severity.CRITICAL,
        title=f"{name} was lost during the run: {how}",
        evidence=evidence,
        subject=(dependency,),
        scope=frozenset({f"dep:{dependency}"}),
        remedy=f"Find why {name} went away (restart, OOM kill, failover, network) in its log and the host's; "
        "verdicts drawn from the samples before the loss are incomplete: run again once it is back.",
    )
