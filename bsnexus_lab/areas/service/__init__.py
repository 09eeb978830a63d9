"""The service area: the BSNexus backend over HTTP, its health endpoints and latency (``lab.service``)."""

from __future__ import annotations

from typing import Any

from bsnexus_lab.areas import Area, Reachability, register
from bsnexus_lab.areas.service import checks as checks  # importing registers the checks
from bsnexus_lab.areas.service.facade import Service
from bsnexus_lab.areas.service.thresholds import ServiceThresholds


def collect(service: Service) -> dict[str, Any]:
    """The quick picture for triage: both health endpoints and a few /health requests; nothing without a URL."""
    if not service.target.service_url:
        return {}
    return {
        "service.health": service.health(),
        "service.latency": service.latency("/health", n=service.thresholds.latency_n, concurrency=4),
    }


def environment(service: Service) -> dict[str, Any]:
    """The version the service reports on ``/health`` (none without a service_url or an answer)."""
    health = service.health()
    versions = health.loc[health["component"] == "service", "version"].dropna()
    return {"service_version": versions.iloc[0]} if len(versions) else {}


AREA = register(
    Area(
        name="service",
        facade=Service,
        thresholds=ServiceThresholds(),
        collect=collect,
        reachability=Reachability.FIRST,
        environment=environment,
    )
)
