"""The service area's thresholds, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass

from bsnexus_lab.thresholds import threshold


@dataclass(frozen=True)
class ServiceThresholds:
    p95_warning_ms: float = threshold(
        2000.0,
        "BSNexus's health and task endpoints are single queries: two seconds at p95 means requests queue "
        "(with margin for a busy host that shares its cores)",
    )
    p95_critical_ms: float = threshold(
        5000.0, "a worker's poll blocks at most 5 s; slower than that and polls time out"
    )
    failed_warning_ratio: float = threshold(0.05, "more than 1 in 20 requests unanswered or 5xx is an outage")
    latency_n: int = threshold(20, "requests triage sends to /health: enough for a p95, cheap on the target")
