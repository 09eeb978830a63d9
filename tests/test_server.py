"""Server probes and checks against the sandbox's Redis, which runs BSNexus's compose settings (allkeys-lru)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import redis as sync_redis

import bsnexus_lab as bl
from bsnexus_lab import checks
from bsnexus_lab.areas import areas, default_thresholds
from bsnexus_lab.areas.server.probes import info_row
from bsnexus_lab.findings import Kind, Severity
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.servers import COMPOSE_REDIS


def _flat(findings: list[bl.Finding]) -> list[bl.Finding]:
    return [g for f in findings for g in (f, *_flat(list(f.explains)))]


def test_info_and_config_audit_are_typed(sandbox: Sandbox) -> None:
    sandbox.load("healthy")
    with bl.connect("sandbox") as lab:
        info = lab.server.info()
        config = lab.server.config_audit().set_index("setting")
        clients = lab.server.clients()
        latency = lab.server.latency()
    row = info.iloc[0]
    assert row["maxmemory"] == 512 * 1024 * 1024 and row["maxmemory_policy"] == "allkeys-lru" and row["aof_enabled"]
    assert 0 < row["memory_ratio"] < 0.1 and row["keys"] > 0 and row["maxclients"] > 0
    assert row["rdb_last_bgsave_status"] == "ok" and row["evicted_keys"] == 0
    assert config.loc["maxmemory-policy", "value"] == COMPOSE_REDIS["maxmemory-policy"]
    assert config.loc["maxmemory-policy", "source"] == "config"
    assert clients[clients["lab"]]["connections"].sum() >= 1
    assert list(latency.columns) == ["event", "time", "latest_ms", "max_ms", "enabled"]


def test_healthy_server_raises_only_the_standing_eviction_risk(sandbox: Sandbox) -> None:
    """BSNexus's compose policy with most of maxmemory free: a configuration warning, and nothing else above info."""
    sandbox.load("healthy")
    with bl.connect("sandbox") as lab:
        frames = areas()["server"].collect(lab.server) | areas()["keys"].collect(lab.keys)
        findings = _flat(lab.check(frames))
    above = [(f.check, f.severity, f.kind) for f in findings if f.severity.rank > Severity.INFO.rank]
    assert above == [("server.eviction_risk", Severity.WARNING, Kind.CONFIG)]


def test_eviction_risk_is_a_critical_configuration_finding(sandbox: Sandbox) -> None:
    facts = sandbox.load("eviction-risk")
    with bl.connect("sandbox") as lab:
        frames = {"server.info": lab.server.info(), **lab.keys.audit(progress=False).frames()}
        findings = {f.check: f for f in _flat(lab.check(frames))}
    risk = findings["server.eviction_risk"]
    assert (risk.severity, risk.kind) == (Severity.CRITICAL, Kind.CONFIG)
    assert risk.evidence["maxmemory_policy"] == facts["policy"]
    assert risk.evidence["maxmemory_bytes"] == facts["maxmemory"]
    assert risk.evidence["streams_or_registry_seen"] is True and "keys evicted" in " ".join(risk.evidence["exposure"])
    evictions = findings["server.evictions"]
    assert evictions.severity == Severity.CRITICAL and evictions.evidence["evicted_keys"] >= facts["evicted_keys"] > 0
    assert findings["server.memory_pressure"].severity == Severity.WARNING


def test_slowlog_masks_keys_and_marks_the_lab(sandbox: Sandbox, writer: sync_redis.Redis) -> None:
    sandbox.load("healthy")
    writer.slowlog_reset()
    writer.config_set("slowlog-log-slower-than", 0)
    try:
        writer.set("worker:token:0123456789abcdef", "w", ex=60)
        with bl.connect("sandbox", thresholds={"server.slow_command_ms": 0.0}) as lab:
            lab.server.info()
            slow = lab.server.slowlog()
            findings = lab.check({"server.slowlog": slow}, area="server")
    finally:
        writer.config_set("slowlog-log-slower-than", 10000)
        writer.slowlog_reset()
    assert "worker:token:***" in set(slow["key"]) and "0123456789abcdef" not in slow.to_csv()
    assert slow[slow["command"] == "INFO"]["lab"].all()
    slow_finding = next(f for f in findings if f.check == "server.slow_commands")
    assert slow_finding.severity == Severity.WARNING and "INFO" not in slow_finding.evidence["by_command"]


@pytest.mark.parametrize(
    ("fields", "severity"),
    [
        ({"aof_enabled": "1", "aof_last_write_status": "err"}, Severity.CRITICAL),
        ({"rdb_last_bgsave_status": "err"}, Severity.WARNING),
    ],
)
def test_failed_persistence(fields: dict[str, Any], severity: Severity) -> None:
    base = {"rdb_last_bgsave_status": "ok", "aof_last_write_status": "ok", "aof_last_bgrewrite_status": "ok"}
    info = pd.DataFrame([info_row(base | fields | {"used_memory": 1, "maxmemory": 0})])
    findings = checks.run({"server.info": info}, thresholds=default_thresholds(), area="server")
    persistence = next(f for f in findings if f.check == "server.persistence")
    assert persistence.severity == severity and persistence.kind == Kind.CAUSE


def _info(**fields: Any) -> pd.DataFrame:
    base = {"used_memory": 400 * 1024 * 1024, "maxmemory": 512 * 1024 * 1024, "maxmemory_policy": "allkeys-lru"}
    return pd.DataFrame([info_row(base | fields)])


def test_eviction_risk_names_the_headroom_and_the_projected_hours() -> None:
    projection = pd.DataFrame([{"series": "redis used_memory", "hours_to_limit": 5.5}])
    frames = {"server.info": _info(), "memory.projection": projection}
    risk = next(
        f
        for f in checks.run(frames, thresholds=default_thresholds(), area="server")
        if f.check == "server.eviction_risk"
    )
    assert risk.evidence["headroom_bytes"] == 112 * 1024 * 1024 and risk.evidence["hours_to_limit"] == 5.5
    assert "112.0 MiB headroom" in risk.title and "about 5.5 h" in risk.title
    assert risk.evidence["streams_or_registry_seen"] is None  # no keyspace evidence given: BSNexus's queues assumed
    calm = checks.run({"server.info": _info(maxmemory_policy="volatile-lru")}, thresholds=default_thresholds())
    assert not [f for f in calm if f.check == "server.eviction_risk" and f.severity != Severity.OK]


def test_refused_and_crowded_clients() -> None:
    info = _info(rejected_connections=7, connected_clients=9_000, maxclients=10_000, blocked_clients=3)
    found = checks.run({"server.info": info}, thresholds=default_thresholds(), area="server")
    titles = sorted(f.title for f in found if f.check == "server.clients")
    assert titles == [
        "9000 clients connected, 90% of maxclients 10000",
        "Redis refused 7 connections (maxclients 10000)",
    ]
