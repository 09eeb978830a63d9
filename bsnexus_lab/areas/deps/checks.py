"""Dependencies that are down."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Kind, Severity

FULL = "too many clients"  # PostgreSQL's own words when max_connections is taken (errors.postgres_error keeps them)


@check("deps.unreachable", "Unreachable dependencies", kind=Kind.CAUSE)
def unreachable(health: pd.DataFrame, thresholds: object) -> list[Finding]:
    """A server that is down, and one that is up but refuses every new connection (a different fix)."""
    findings = []
    for row in health.itertuples():
        if row.reachable:
            continue
        title = f"{row.dependency} is unreachable"
        remedy = f"Restore {row.dependency}: BSNexus's /health/deps reports it disconnected while it is down."
        if FULL in str(row.error):
            title = f"{row.dependency} refuses new connections: too many clients (max_connections is full)"
            remedy = (
                "Find who holds the sessions (pg_stat_activity by application_name, through a superuser's reserved "
                "slot): end the leak, or raise max_connections to cover every pool (BSNexus's engine keeps up to "
                "pool_size + max_overflow sessions per process)."
            )
        findings.append(
            Finding(
                check="deps.unreachable",
                severity=Severity.CRITICAL,
                title=title,
                evidence={"url": row.url, "error": row.error},
                subject=(row.dependency,),
                scope=frozenset({f"dep:{row.dependency}"}),
                remedy=remedy,
            )
        )
    return findings


@check(
    "deps.lost_during_run",
    "Dependencies lost during the run",
    kind=Kind.CAUSE,
    inputs={"samples": "streams.samples", "connections": "db.connections"},
)
def lost_during_run(
    health: pd.DataFrame,
    thresholds: object,
    samples: pd.DataFrame | None = None,
    health_after: pd.DataFrame | None = None,
    connections: pd.DataFrame | None = None,
) -> list[Finding]:
    """A server that answered when the run began and then did not: sampler gaps (the backlog sampler for Redis,
    the session sampler for PostgreSQL) or the closing probe.

    Without this, a run whose Redis died at second 10 reports "Unreachable dependencies: none found" and a lag
    verdict from the few samples taken before; a PostgreSQL restarted mid-run would leave no trace at all.
    """
    up_at_start = set(health.loc[health["reachable"].astype(bool), "dependency"])
    gaps = {
        dependency: finding
        for dependency, frame in (("redis", samples), ("postgresql", connections))
        if dependency in up_at_start and (finding := _gaps(dependency, frame)) is not None
    }
    findings = list(gaps.values())
    if health_after is not None:
        for row in health_after.itertuples():
            if row.dependency in up_at_start and not row.reachable and row.dependency not in gaps:
                findings.append(_lost(row.dependency, {"url": row.url, "error": row.error, "recovered": False}))
    return findings


def _gaps(dependency: str, samples: pd.DataFrame | None) -> Finding | None:
    """A sampler's gap rows (ticks whose round trip to ``dependency`` failed) as one finding about it."""
    if samples is None or "error" not in samples or samples.empty:
        return None
    ticks = samples.reset_index().drop_duplicates("time")
    failed = ticks[ticks["error"].notna()]
    if failed.empty:
        return None
    recovered = bool(ticks["error"].isna().iloc[-1])
    return _lost(
        dependency,
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
