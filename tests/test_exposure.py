"""A configuration risk's severity follows its exposure: BSNexus's compose Redis (allkeys-lru, 512 MB) with most
of maxmemory free is a warning, critical only when eviction is near or seen; and a healthy busy world with those
settings gives nothing above warning in any runbook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis as sync_redis

import bsnexus_lab as bl
from bsnexus_lab import checks, runner
from bsnexus_lab.areas import default_thresholds
from bsnexus_lab.areas.db import checks as db_checks
from bsnexus_lab.areas.db.thresholds import DbThresholds
from bsnexus_lab.areas.server.probes import info_row
from bsnexus_lab.errors import EXIT_FINDINGS, EXIT_OK
from bsnexus_lab.findings import Finding, Kind, Severity, Unavailable, document, flatten
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.servers import COMPOSE_REDIS
from tests.conftest import _sources
from tests.test_safety import QUICK

MIB = 1024 * 1024
MAXMEMORY = 512 * MIB  # BSNexus's compose file: --maxmemory 512mb --maxmemory-policy allkeys-lru
STREAMS = pd.DataFrame({"type": ["stream", "hash", "string"], "keys": [4, 3, 6]})
WORKER = "0b7c6a52-54b0-4b8e-9d3e-1f9a3c2b7d10"


def info(used_ratio: float, evicted: int = 0) -> pd.DataFrame:
    row = {
        "used_memory": int(MAXMEMORY * used_ratio),
        "maxmemory": MAXMEMORY,
        "maxmemory_policy": COMPOSE_REDIS["maxmemory-policy"],
        "evicted_keys": evicted,
    }
    return pd.DataFrame([info_row(row)])


def risk(**frames: pd.DataFrame) -> Finding:
    """The eviction-risk finding from frames named ``area__probe`` (``keys__by_type`` -> ``keys.by_type``)."""
    finding = judged(**frames)
    assert finding.kind is Kind.CONFIG
    return finding


def judged(**frames: Any) -> Finding:
    found = checks.run(
        {name.replace("__", "."): frame for name, frame in frames.items()},
        thresholds=default_thresholds(),
        area="server",
    )
    [finding] = [f for f in flatten(found) if f.check == "server.eviction_risk"]
    return finding


def summary(*present: str, missing: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = [{"stream": s, "group": "g", "exists": True, "direct": False} for s in present]
    rows += [{"stream": s, "group": None, "exists": False, "direct": False} for s in missing]
    rows.append({"stream": "events:board", "group": None, "exists": False, "direct": True})  # appears with events
    return pd.DataFrame(rows)


def workers(age_s: float, status: str = "busy", registered: bool | None = False) -> pd.DataFrame:
    return pd.DataFrame(
        [{"worker_id": WORKER, "name": "w", "status": status, "heartbeat_age_s": age_s, "registered": registered}]
    )


def test_compose_settings_with_most_memory_free_are_a_warning_with_the_headroom() -> None:
    finding = risk(server__info=info(0.003), keys__by_type=STREAMS)
    assert finding.severity is Severity.WARNING
    assert finding.evidence["exposure"] == [] and finding.evidence["used_ratio"] == 0.003
    assert finding.evidence["headroom_bytes"] == MAXMEMORY - int(MAXMEMORY * 0.003)
    assert finding.title == (
        "maxmemory-policy allkeys-lru with maxmemory 512 MiB, 0.3% used, 510.5 MiB headroom: at the limit Redis "
        "may evict a task stream or a live worker's key"
    )


def test_used_memory_near_maxmemory_is_critical() -> None:
    finding = risk(server__info=info(0.92), keys__by_type=STREAMS)
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["exposure"] == ["92% of maxmemory used"]
    below = risk(server__info=info(0.89), keys__by_type=STREAMS)  # eviction_critical_ratio is 0.9
    assert below.severity is Severity.WARNING


def test_evicted_keys_in_the_window_or_since_start_are_critical() -> None:
    projection = pd.DataFrame([{"series": "redis used_memory", "hours_to_limit": None, "evicted_in_window": 7}])
    grown = risk(server__info=info(0.003), keys__by_type=STREAMS, memory__projection=projection)
    assert grown.severity is Severity.CRITICAL and grown.evidence["evicted_in_window"] == 7
    assert "7 keys evicted" in grown.title
    since_start = risk(server__info=info(0.003, evicted=3), keys__by_type=STREAMS)
    assert since_start.severity is Severity.CRITICAL and since_start.evidence["evicted_keys"] == 3


def test_no_streams_or_registry_keys_at_risk_is_info() -> None:
    caches = pd.DataFrame({"type": ["string", "hash"], "keys": [40, 2]})
    prefixes = pd.DataFrame({"prefix": ["cache:{id}", "session:{id}"], "keys": [40, 2]})
    finding = risk(server__info=info(0.003), keys__by_type=caches, keys__by_prefix=prefixes)
    assert finding.severity is Severity.INFO and finding.evidence["streams_or_registry_seen"] is False
    assert finding.title.endswith("no stream or worker registry key here for it to evict")


def test_a_stream_missing_beside_its_siblings_is_critical() -> None:
    gone = risk(
        server__info=info(0.003),
        streams__summary=summary("tasks:queue", "tasks:results", "tasks:escalation", missing=("tasks:qa",)),
    )
    assert gone.severity is Severity.CRITICAL and gone.evidence["missing_streams"] == ["tasks:qa"]
    assert "stream tasks:qa missing beside its siblings" in gone.title
    fresh = risk(server__info=info(0.003), streams__summary=summary(missing=("tasks:queue", "tasks:qa")))
    assert fresh.severity is Severity.INFO  # no stream created yet (backend never started): nothing at risk
    assert risk(server__info=info(0.003), streams__summary=summary("tasks:queue")).severity is Severity.WARNING


def test_a_registry_key_gone_while_its_worker_heartbeats_is_critical() -> None:
    evicted = risk(server__info=info(0.003), keys__by_type=STREAMS, db__workers=workers(age_s=20.0))
    assert evicted.severity is Severity.CRITICAL and evicted.evidence["evicted_registry_keys"] == [WORKER]
    for calm in (
        workers(age_s=200.0),  # older than the key's 90 s TTL: it expired, the worker is gone (streams' business)
        workers(age_s=20.0, status="offline"),  # the backend set it offline itself
        workers(age_s=20.0, registered=True),
        workers(age_s=20.0, registered=None),  # Redis could not say
    ):
        finding = risk(server__info=info(0.003), keys__by_type=STREAMS, db__workers=calm)
        assert finding.severity is Severity.WARNING and finding.evidence["evicted_registry_keys"] == []


def test_privileges_with_no_session_hidden_are_info() -> None:
    server = pd.DataFrame([{"superuser": False, "reads_all_stats": False}])
    activity = pd.DataFrame({"hidden": [False, False]})
    [none_hidden] = db_checks.privileges(server, DbThresholds(), activity)
    assert none_hidden.severity is Severity.INFO and "0 sessions hidden" in none_hidden.title
    [two_hidden] = db_checks.privileges(server, DbThresholds(), activity.assign(hidden=True))
    assert two_hidden.severity is Severity.WARNING and two_hidden.evidence["hidden_sessions"] == 2


def test_the_sandbox_shows_an_evicted_registry_key_and_a_missing_stream(
    sandbox: Sandbox, writer: sync_redis.Redis
) -> None:
    """The probes' own frames (PostgreSQL's heartbeat ages, the registry lookups, the stream summary) as triage
    passes them: a worker that heartbeats without its key, then a task stream gone beside its siblings."""
    facts = sandbox.load("evicted-registry-key")
    with bl.connect("sandbox") as lab:
        frames = {"server.info": lab.server.info(), "db.workers": lab.db.workers()}
        keys_gone = next(f for f in lab.check(frames, area="server") if f.check == "server.eviction_risk")
        writer.delete("tasks:escalation")  # nothing in the sandbox writes it: it stays gone
        frames = {"server.info": lab.server.info(), "streams.summary": lab.streams.summary()}
        stream_gone = next(f for f in lab.check(frames, area="server") if f.check == "server.eviction_risk")
    assert keys_gone.severity is Severity.CRITICAL
    assert keys_gone.evidence["evicted_registry_keys"] == [facts["consumer"]]
    assert stream_gone.severity is Severity.CRITICAL
    assert stream_gone.evidence["missing_streams"] == ["tasks:escalation"]


# -- every runbook on a busy healthy world with BSNexus's compose Redis ------------------------------------------
@pytest.fixture(scope="module")
def busy(sandbox_root: tuple[Sandbox, str]) -> Iterator[dict[str, Any]]:
    """The busy world with the service (the profiling runbooks' process); one server source is enough: the
    severity policy does not depend on the server build."""
    box, source = sandbox_root
    if source != _sources()[0]:
        pytest.skip("severities on the first server source only")
    facts = box.load("busy")
    box.start_service()
    yield facts
    box.stop_service()


@pytest.mark.parametrize("runbook", sorted(QUICK))
def test_a_busy_healthy_world_gives_nothing_above_warning(
    runbook: str, busy: dict[str, Any], sandbox: Sandbox, tmp_path: Path
) -> None:
    result = runner.run(runbook, target="sandbox", params=QUICK[runbook], output_root=tmp_path)
    assert result.exit_code in (EXIT_OK, EXIT_FINDINGS), result.error
    saved = document.load(result.run_dir / "findings.json")
    above = [f"{f.severity} {f.check}: {f.title}" for f in flatten(saved) if f.severity is Severity.CRITICAL]
    assert above == []
    if runbook in ("redis_health", "triage"):  # the compose settings are in effect, and read as a standing risk
        [risk] = [f for f in flatten(saved) if f.check == "server.eviction_risk"]
        assert (risk.severity, risk.evidence["maxmemory_policy"]) == (Severity.WARNING, "allkeys-lru")


def test_an_optional_input_that_could_not_be_gathered_leaves_the_risk_judged() -> None:
    unavailable = Unavailable("PostgreSQL did not answer", dependency="postgresql")
    finding = risk(server__info=info(0.003), keys__by_type=STREAMS, db__workers=unavailable)
    assert (finding.kind, finding.severity) == (Kind.CONFIG, Severity.WARNING)
    unchecked = judged(server__info=Unavailable("Redis refused INFO"), keys__by_type=STREAMS)
    assert unchecked.kind is Kind.NOT_CHECKED
    assert unchecked.title == "Redis may evict BSNexus's queues or registry: not checked: Redis refused INFO"
