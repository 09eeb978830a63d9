"""The service area's checks: the service unreachable or reporting a dependency down (causes), and slow or
failing responses (a symptom, scoped to the service and its process so a CPU hotspot or a stall explains it)."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.areas.service.stats import percentiles
from bsnexus_lab.areas.service.thresholds import ServiceThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Kind, Severity

SCOPE = "service"


@check("service.down", "The service not answering /health", kind=Kind.CAUSE)
def down(health: pd.DataFrame, thresholds: ServiceThresholds) -> list[Finding]:
    row = health[health["component"] == "service"]
    if row.empty or row.iloc[0]["status"] == "healthy":
        return []
    first = row.iloc[0]
    return [
        Finding(
            "service.down",
            Severity.CRITICAL,
            f"The service does not report healthy on /health ({first['error'] or first['status']})",
            evidence={"http_status": first["http_status"], "error": first["error"]},
            remedy="check the uvicorn process (lab.profile.processes()) and its log (bsnexus.log)",
            subject=("service",),
            scope=frozenset({SCOPE}),
        )
    ]


@check("service.dependency_down", "A dependency the service reports disconnected", kind=Kind.CAUSE)
def dependency_down(health: pd.DataFrame, thresholds: ServiceThresholds) -> list[Finding]:
    deps = health[(health["endpoint"] == "/health/deps") & (health["status"] == "disconnected")]
    return [
        Finding(
            "service.dependency_down",
            Severity.CRITICAL,
            f"The service reports {row['component']} disconnected (/health/deps)",
            evidence={"dependency": row["component"]},
            remedy=f"the service cannot reach {row['component']}: check it with lab.health() and the service's "
            f"{row['component'].upper() if row['component'] == 'redis' else 'DATABASE'}_URL",
            subject=(row["component"],),
            scope=frozenset({SCOPE, f"dep:{row['component']}"}),
        )
        for _, row in deps.iterrows()
    ]


@check("service.slow", "Responses slower than the latency thresholds, or failing")
def slow(latency: pd.DataFrame, thresholds: ServiceThresholds) -> list[Finding]:
    pid = latency.attrs.get("pid")
    scope = frozenset({SCOPE} | ({f"process:{pid}"} if pid else set()))
    findings = []
    for _, row in percentiles(latency).iterrows():
        failed = row["failed"] / row["requests"]
        if row["p95_ms"] < thresholds.p95_warning_ms and failed <= thresholds.failed_warning_ratio:
            continue
        critical = row["p95_ms"] >= thresholds.p95_critical_ms or failed > 0.5
        findings.append(
            Finding(
                "service.slow",
                Severity.CRITICAL if critical else Severity.WARNING,
                f"{row['path']}: p95 {row['p95_ms']:.0f} ms, {failed:.0%} failed over {row['requests']} requests",
                evidence={k: row[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "statuses")},
                remedy="profile the service while it is slow: lab.profile.cpu(seconds=10) for CPU, idle=True for "
                "stalls and waits",
                subject=(row["path"],),
                scope=scope,
            )
        )
    return findings
