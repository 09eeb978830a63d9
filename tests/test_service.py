"""The service area over real HTTP against the sandbox's service: both health endpoints, latency with
status codes and 422 validation errors, and checks that stay quiet on a healthy service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import bsnexus_lab as bl
from bsnexus_lab.areas.service.checks import dependency_down, down, slow
from bsnexus_lab.areas.service.thresholds import ServiceThresholds
from bsnexus_lab.errors import ConfigError
from bsnexus_lab.findings import Kind, Severity
from bsnexus_lab.sandbox import Sandbox
from tests.test_profile_sandbox import service as service

T = ServiceThresholds()


@pytest.fixture
def lab(service: Sandbox, sandbox: Sandbox) -> Iterator[Any]:
    sandbox.load("healthy")
    with bl.connect("sandbox") as lab:
        yield lab


def test_health_reports_both_endpoints(lab: Any) -> None:
    health = lab.service.health().set_index("component")
    assert health.loc["service", "status"] == "healthy"
    assert health.loc["redis", "status"] == "connected" and health.loc["postgresql", "status"] == "connected"
    assert set(health["http_status"]) == {200}


def test_latency_percentiles_and_validation_errors(lab: Any) -> None:
    requests = lab.service.latency("/health", n=30, concurrency=5)
    summary = lab.service.percentiles(requests).iloc[0]
    assert (summary["requests"], summary["failed"], summary["statuses"]) == (30, 0, {200: 30})
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["max_ms"]
    refused = lab.service.latency("/api/v1/tasks?limit=5000", n=2, concurrency=1)
    assert set(refused["status"]) == {422}
    table = lab.service.validation_errors(refused)
    assert list(table["loc"]) == ["query.limit", "query.limit"] and set(table["input"]) == {"5000"}


def test_healthy_service_raises_nothing_above_info(lab: Any) -> None:
    frames = bl.areas.areas()["service"].collect(lab.service) | bl.areas.areas()["profile"].collect(lab.profile)
    assert set(frames) == {"service.health", "service.latency", "profile.processes"}
    findings = lab.check(frames)
    assert findings and all(f.severity in (Severity.OK, Severity.INFO) for f in findings)


def test_no_service_url_is_a_one_line_config_error(sandbox: Sandbox) -> None:
    with bl.connect(redis_url="redis://127.0.0.1:1/0") as lab, pytest.raises(ConfigError, match="no service_url"):
        lab.service.health()


def health(service: str, redis: str = "connected", status: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"endpoint": "/health", "component": "service", "status": service, "http_status": status},
            {"endpoint": "/health/deps", "component": "redis", "status": redis, "http_status": 200},
            {"endpoint": "/health/deps", "component": "postgresql", "status": "connected", "http_status": 200},
        ]
    ).assign(latency_ms=1.0, error=None)


def test_dependency_down_and_service_down_are_critical_causes() -> None:
    [dep] = dependency_down(health("healthy", redis="disconnected"), T)
    assert (dep.severity, dep.scope) == (Severity.CRITICAL, frozenset({"service", "dep:redis"}))
    assert down(health("unreachable", status=502), T)[0].severity == Severity.CRITICAL
    assert dependency_down(health("healthy"), T) == [] and down(health("healthy"), T) == []


def test_slow_responses_are_a_symptom_in_the_process_scope() -> None:
    requests = pd.DataFrame(
        {
            "request": range(20),
            "path": "/api/v1/tasks",
            "status": [200] * 20,
            "latency_ms": [2500.0] * 20,
            "error": None,
        }
    )
    requests.attrs["pid"] = 42
    [finding] = slow(requests, T)
    assert finding.severity == Severity.WARNING and finding.scope == frozenset({"service", "process:42"})
    assert slow(requests.assign(latency_ms=50.0), T) == []
    from bsnexus_lab.checks import REGISTRY

    assert REGISTRY["service.slow"].kind == Kind.SYMPTOM
