"""The database area against the real sandbox: every scenario's check fires with the planted numbers and names,
``healthy`` raises nothing above info, and bad input degrades into findings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import bsnexus_lab as bl
from bsnexus_lab import runner
from bsnexus_lab.areas.db import plots
from bsnexus_lab.areas.db.activity import MARKER
from bsnexus_lab.areas.db.migrations import NO_VERSIONS_REMEDY
from bsnexus_lab.errors import ConfigError, PermissionDenied
from bsnexus_lab.findings import Finding, Kind, Severity, Unavailable
from bsnexus_lab.findings import flatten as flat
from bsnexus_lab.sandbox import Sandbox, servers
from bsnexus_lab.sandbox.scenarios.db import VERSIONS_DIR
from bsnexus_lab.sandbox.world import ALEMBIC_REVISION


def above_info(findings: list[Finding]) -> list[str]:
    return [f"{f.severity} {f.check}: {f.title}" for f in flat(findings) if f.severity.rank > Severity.INFO.rank]


def wait_for(probe: Callable[[], Any], ready: Callable[[Any], bool], timeout: float = 90.0) -> Any:
    """Poll until the traffic process has set the scene (never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ready(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


@pytest.fixture
def lab(sandbox: Sandbox) -> Iterator[bl.Lab]:
    with bl.connect("sandbox") as opened:
        yield opened


def superuser(sandbox: Sandbox, database: str = "bsnexus") -> str:
    return sandbox.urls()["database_url"].replace("+asyncpg", "").rsplit("/", 1)[0] + f"/{database}"


def execute(url: str, *statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def test_healthy_raises_nothing_above_info_and_leaves_the_lab_out(healthy: dict[str, Any], lab: bl.Lab) -> None:
    frames = lab.db.snapshot(VERSIONS_DIR)
    assert frames["db.skipped"].empty
    assert above_info(lab.check(frames)) == []
    assert "bsnexus-lab" not in set(frames["db.activity"]["application"])
    assert not frames["db.statements"]["query"].str.startswith(MARKER).any()
    assert frames["db.server"]["usable_connections"].iloc[0] == 61
    assert bool(frames["db.server"]["statements_installed"].iloc[0])
    assert frames["db.migrations"]["state"].iloc[0] == "current"
    queued = len(healthy["executing"]) + len(healthy["waiting"])
    assert frames["db.tasks"].set_index("status").loc["queued", "tasks"] == queued
    assert frames["db.consistency"].empty
    holding = frames["db.active_tasks"].set_index("task_id")
    assert set(healthy["executing"]) | {healthy["reviewing"]} | set(healthy["waiting"]) == set(holding.index)
    assert holding.loc[healthy["reviewing"], "status"] == "review"


def test_pool_exhaustion(sandbox: Sandbox) -> None:
    facts = sandbox.load("pool-exhaustion")
    with bl.connect("sandbox", thresholds={"db.idle_in_transaction_s": 1.0}) as lab:
        activity = wait_for(
            lab.db.activity,
            lambda a: (
                (a["application"].eq(facts["application"]) & a["state_age_s"].gt(1.5)).sum() == facts["held_sessions"]
            ),
        )
        findings = lab.check({"db.server": lab.db.server(), "db.activity": activity})
    top = findings[0]
    assert top.check == "db.pool_exhaustion" and top.severity == Severity.CRITICAL
    assert top.evidence["application"] == "bsnexus-backend" and top.evidence["idle_in_transaction"] == 58
    assert "pool_size 5 + max_overflow 10" in top.remedy
    nested = {f.check: f for f in top.explains}
    assert nested["db.connections"].severity == Severity.CRITICAL
    assert nested["db.connections"].evidence["by_application"]["bsnexus-backend"] == 58
    assert nested["db.connections"].evidence["usable"] == facts["usable_connections"]
    assert "db.idle_in_transaction" in nested
    assert [f.check for f in findings if f.check == "db.connections"] == []  # not a separate top finding


def test_lock_contention_names_the_root_blocker_with_its_waiters(sandbox: Sandbox) -> None:
    facts = sandbox.load("lock-contention")
    with bl.connect("sandbox") as lab:
        locks = wait_for(lab.db.locks, lambda t: len(t) == 3 and t["wait_s"].max() > 5.5)
        findings = lab.check({"db.locks": locks, "db.activity": lab.db.activity()})
    root = locks.iloc[0]
    assert root["application"] == facts["root_application"] and root["state"] == "idle in transaction"
    assert facts["locked_task"] in root["query"]
    assert list(locks["depth"]) == [0, 1, 2]
    assert list(locks["application"][1:]) == facts["waiter_applications"]
    assert locks["blocked_by"].iloc[2] == [int(locks["pid"].iloc[1])]
    [chain] = [f for f in findings if f.check == "db.lock_chain"]
    assert chain.severity == Severity.WARNING and chain.kind == bl.Kind.CAUSE
    assert chain.evidence["root"]["application"] == "bsnexus-orchestrator"
    assert [w["application"] for w in chain.evidence["waiters"]] == facts["waiter_applications"]
    assert chain.scope == frozenset(f"pg:pid:{p}" for p in locks["pid"])
    assert findings[0].check == "db.lock_chain"
    labels = [t.get_text() for t in plots.blocking_tree(locks).axes[0].texts]
    assert labels[0].startswith(f"pid {root['pid']} bsnexus-orchestrator (idle in transaction")


def test_slow_query_is_a_sequential_scan_the_missing_index_explains(sandbox: Sandbox) -> None:
    facts = sandbox.load("slow-query")
    with bl.connect("sandbox", thresholds={"db.slow_statement_mean_ms": 0.0}) as lab:
        statements, tables = lab.db.statements(), lab.db.tables()
        findings = lab.check({"db.statements": statements, "db.tables": tables})
        plan = lab.db.explain("SELECT * FROM task_history WHERE task_id = gen_random_uuid()")
    mine = statements[statements["query"].str.contains("FROM task_history WHERE task_id")]
    assert mine["calls"].iloc[0] == facts["calls"] and mine["tables"].iloc[0] == ["task_history"]
    [cause] = [f for f in findings if f.check == "db.seq_scans"]
    assert cause.subject == ("task_history",) and cause.evidence["seq_scan"] >= facts["calls"]
    scanned = tables.set_index("table").loc["task_history"]
    assert scanned["seq_tup_read"] >= facts["rows"] * facts["calls"] and scanned["live_rows"] >= facts["rows"]
    assert any(f.check == "db.slow_statements" for f in cause.explains)
    assert "Seq Scan" in json.dumps(plan)


def test_explain_never_executes_on_a_read_only_lab_and_rolls_back_analyze(sandbox: Sandbox, lab: bl.Lab) -> None:
    sandbox.load("healthy")
    update = "UPDATE tasks SET title = 'changed' WHERE status = 'queued'"
    with pytest.raises(PermissionDenied, match="read-only"):
        lab.db.explain(update, analyze=True)
    with bl.connect("sandbox", allow_writes=True) as writer:
        plan = writer.db.explain(update, analyze=True)
    [scan] = plan["Plan"]["Plans"]  # ANALYZE ran the update: its scan met the queued tasks (then it rolled back)
    assert plan["Plan"]["Operation"] == "Update" and scan["Relation Name"] == "tasks" and scan["Actual Rows"] >= 1
    assert "changed" not in set(lab.query("SELECT title FROM tasks")["title"])
    version = int(lab.db.server()["version_num"].iloc[0])
    generic = "SELECT * FROM tasks WHERE status = $1"
    if version >= 160000:
        assert "Plan" in lab.db.explain(generic)
    else:
        with pytest.raises(ConfigError, match="placeholders"):
            lab.db.explain(generic)


def test_migration_drift_reports_how_far_behind_and_what_is_not_applied(sandbox: Sandbox, lab: bl.Lab) -> None:
    facts = sandbox.load("migration-drift")
    assert "unsafe use of new value" in facts["error"]
    frame = lab.db.migrations(facts["versions_dir"])
    row = frame.iloc[0]
    assert row["state"] == "behind" and row["current"] == [facts["current"]] and row["expected"] == ALEMBIC_REVISION
    assert row["behind"] == 2 and row["not_applied"] == facts["not_applied"]
    [finding] = lab.check({"db.migrations": frame})
    assert (
        finding.title == f"Database at revision {facts['current']}, head is {ALEMBIC_REVISION}: 2 migration(s) behind"
    )
    assert lab.db.migrations(expected_head=facts["current"])["state"].iloc[0] == "current"
    revisions = lab.db.revisions(facts["versions_dir"])
    assert revisions["merge"].sum() == 1 and list(revisions[revisions["head"]]["revision"]) == [ALEMBIC_REVISION]


def test_without_a_versions_directory_the_schema_is_not_checked(sandbox: Sandbox) -> None:
    """Nothing to compare alembic_version with: "not checked", never "none found"; the revision is still read."""
    sandbox.load("healthy")
    urls = sandbox.urls()
    with bl.connect(redis_url=urls["redis_url"], database_url=urls["database_url"]) as lab:
        assert lab.target.versions_dir is None
        missing = lab.db.migrations()
        findings = [f for f in flat(lab.check(lab.db.snapshot())) if f.check == "db.migrations"]
        revision = lab.db.revision()
    assert missing == Unavailable("no Alembic versions directory", remedy=NO_VERSIONS_REMEDY)
    [finding] = findings
    assert finding.kind is Kind.NOT_CHECKED
    assert finding.title == "Schema not at the expected Alembic revision: not checked: no Alembic versions directory"
    assert revision == [ALEMBIC_REVISION]


def test_in_the_checkout_the_head_is_the_code_on_disk(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BSNexus's .env and backend/alembic.ini, with one revision on disk that the database has not applied."""
    sandbox.load("healthy")
    urls = sandbox.urls()
    (tmp_path / ".env").write_text(f"REDIS_URL={urls['redis_url']}\nDATABASE_URL={urls['database_url']}\n")
    versions = tmp_path / "backend" / "alembic" / "versions"
    versions.mkdir(parents=True)
    for path in VERSIONS_DIR.glob("*.py"):
        (versions / path.name).write_text(path.read_text())
    (versions / "f00dcafe0001_next.py").write_text(
        f'"""next"""\nrevision = "f00dcafe0001"\ndown_revision = "{ALEMBIC_REVISION}"\n'
    )
    (tmp_path / "backend" / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/alembic\n")
    monkeypatch.chdir(tmp_path)
    with bl.connect() as lab:
        frame = lab.db.migrations()
        [finding] = lab.check({"db.migrations": frame})
    row = frame.iloc[0]
    assert (row["state"], row["behind"], row["versions_dir"]) == ("behind", 1, str(versions))
    assert row["versions_source"] == f"checkout: {tmp_path / 'backend' / 'alembic.ini'} script_location"
    assert finding.title == (
        f"Database at revision {ALEMBIC_REVISION}, head is f00dcafe0001: 1 migration(s) behind (head from the "
        "checkout's code on disk, which may differ from what is deployed)"
    )


def test_db_stream_drift_finds_each_consistency_fault(sandbox: Sandbox, lab: bl.Lab) -> None:
    facts = sandbox.load("db-stream-drift")
    frame = lab.db.consistency()
    faults = {row.fault: row for row in frame.itertuples()}
    assert set(faults) == {"lost_publish", "expired_worker", "missed_ack", "misrouted_qa"}
    assert faults["lost_publish"].task_id == facts["lost_publish"]
    assert faults["expired_worker"].task_id == facts["expired_worker"]["task_id"]
    assert faults["expired_worker"].consumer == facts["expired_worker"]["worker_id"]
    assert faults["missed_ack"].entry_id == facts["missed_ack"]["entry"]
    assert faults["missed_ack"].consumer == facts["missed_ack"]["consumer"] and faults["missed_ack"].status == "done"
    misrouted = faults["misrouted_qa"]
    assert misrouted.consumer == facts["misrouted_qa"]["holder"]
    assert misrouted.expected_consumer == facts["misrouted_qa"]["reviewer"] and misrouted.deliveries == 4
    findings = {f.subject: f for f in lab.check({"db.consistency": frame}) if f.check == "db.consistency"}
    assert findings[("lost_publish",)].severity == Severity.CRITICAL
    assert findings[("misrouted_qa",)].scope == frozenset({f"task:{facts['misrouted_qa']['task_id']}"})
    assert set(findings) == {("lost_publish",), ("expired_worker",), ("missed_ack",), ("misrouted_qa",)}


def test_a_dead_consumer_is_left_to_the_streams_finding(stuck: dict[str, Any], lab: bl.Lab) -> None:
    frames = lab.db.snapshot()
    assert set(frames["db.consistency"]["fault"]) == {"dead_consumer"}
    assert set(frames["db.consistency"]["task_id"]) == set(stuck["task_ids"])
    db_findings = [
        f for f in flat(lab.check(frames)) if f.check.startswith("db.") and f.severity.rank > Severity.OK.rank
    ]
    assert db_findings == []


@pytest.mark.parametrize("scenario", ["consumers-stopped", "trimmed-backlog"])
def test_the_streams_scenarios_get_no_second_copy_from_the_database(sandbox: Sandbox, scenario: str) -> None:
    sandbox.load(scenario)
    with bl.connect("sandbox", thresholds={"db.publish_grace_s": 0.0}) as lab:
        findings = flat(lab.check(lab.db.snapshot()))
    assert [f.title for f in findings if f.check.startswith("db.") and f.severity.rank > Severity.INFO.rank] == []


def test_connections_are_sampled_over_a_window(sandbox: Sandbox, lab: bl.Lab) -> None:
    facts = sandbox.load("pool-exhaustion")
    wait_for(lab.db.activity, lambda a: len(a) >= facts["held_sessions"])
    samples = lab.db.sample_connections(every=0.2, duration=1.0).wait(timeout=30)
    held = samples[samples["application"] == "bsnexus-backend"]
    assert len(held) >= 3 and set(held["sessions"]) == {facts["held_sessions"]}
    assert plots.connections(samples).axes[0].get_legend_handles_labels()[1] == [
        "bsnexus-backend / idle in transaction"
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda url: url.replace("bsnexus:", "bsnexus:wrong", 1), "PostgreSQL refused the credentials"),
        (lambda url: url.rsplit("/", 1)[0] + "/nosuchdb", "PostgreSQL has no such database"),
        (lambda url: url.split("@")[0] + "@127.0.0.1:1/bsnexus", "cannot reach PostgreSQL"),
    ],
    ids=["wrong-password", "missing-database", "server-down"],
)
def test_an_unusable_database_is_one_finding_without_secrets(
    sandbox: Sandbox, change: Callable[[str], str], reason: str
) -> None:
    urls = sandbox.urls()
    with bl.connect(redis_url=urls["redis_url"], database_url=change(urls["database_url"])) as lab:
        frames = lab.db.snapshot()
        findings = lab.check(frames)
    [row] = frames["db.skipped"].to_dict("records")
    assert row["reason"] == reason and row["dependency"] == "postgresql" and len(row["not_run"]) == 11
    [skipped] = [f for f in flat(findings) if f.check == "db.skipped"]
    assert skipped.scope == frozenset({"dep:postgresql"})
    password = urls["database_url"].split(":")[2].split("@")[0]
    assert password not in json.dumps([f.evidence | {"title": f.title} for f in flat(findings)], default=str)


def test_a_database_without_bsnexus_tables_or_pg_stat_statements(sandbox: Sandbox) -> None:
    sandbox.load("healthy")
    execute(superuser(sandbox, "postgres"), "DROP DATABASE IF EXISTS notbsnexus", "CREATE DATABASE notbsnexus")
    urls = sandbox.urls()
    with bl.connect(
        redis_url=urls["redis_url"], database_url=urls["database_url"].rsplit("/", 1)[0] + "/notbsnexus"
    ) as lab:
        frames = lab.db.snapshot(VERSIONS_DIR)
        findings = flat(lab.check(frames))
    schema = [f for f in findings if f.check == "db.schema"]
    assert len(schema) == 1 and "does not look like a BSNexus database" in schema[0].title
    assert not {"db.tasks", "db.migrations", "db.consistency"} & set(frames)
    with bl.connect(database_url=urls["database_url"].rsplit("/", 1)[0] + "/notbsnexus") as lab:
        missing = lab.db.migrations(VERSIONS_DIR)
    assert missing["state"].iloc[0] == "missing" and missing["behind"].iloc[0] == 7
    [row] = frames["db.skipped"].to_dict("records")
    assert row["probe"] == "statements" and "sampled instead" in row["reason"] and row["severity"] == "info"
    assert "db.sampled_statements" in frames
    assert [f.check for f in findings if f.severity.rank > Severity.INFO.rank] == ["db.schema"]


def test_a_role_without_pg_monitor_degrades_and_lists_what_was_skipped(sandbox: Sandbox) -> None:
    facts = sandbox.load("pool-exhaustion")
    execute(
        superuser(sandbox),
        "DROP ROLE IF EXISTS lab_limited",
        "CREATE ROLE lab_limited LOGIN PASSWORD 'limited-pw'",
    )
    urls = sandbox.urls()
    limited = "postgresql+asyncpg://lab_limited:limited-pw@" + urls["database_url"].split("@")[1]
    with bl.connect(redis_url=urls["redis_url"], database_url=limited) as lab:
        wait_for(lab.db.activity, lambda a: len(a) >= facts["held_sessions"])
        frames = lab.db.snapshot()
        findings = flat(lab.check(frames))
    privileges = [f for f in findings if f.check == "db.privileges"]
    assert privileges and privileges[0].evidence["hidden_sessions"] >= facts["held_sessions"]
    skipped = frames["db.skipped"].set_index("probe")["reason"].to_dict()
    assert skipped["tasks"] == "permission denied on BSNexus's tables"
    assert {"db.activity", "db.locks", "db.tables"} <= set(frames)


def test_db_health_runbook_runs_on_the_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    facts = sandbox.load("db-stream-drift")
    result = runner.run(
        "db_health",
        target="sandbox",
        params={"versions_dir": str(VERSIONS_DIR), "window_s": 1.0, "every_s": 0.25},
        output_root=tmp_path,
    )
    assert result.error is None
    checks = {f.check for f in flat(result.findings)}
    assert "db.consistency" in checks
    assert facts["lost_publish"] in result.notebook.read_text()


def test_postgresql_stopping_mid_run_is_one_finding(sandbox: Sandbox) -> None:
    sandbox.load("healthy")
    state = sandbox._state()["postgres"]
    bindir = servers.Binary(Path(state["bindir"]), state["source"])
    try:
        with bl.connect("sandbox") as lab:
            assert lab.db.snapshot()["db.skipped"].empty  # the pool now holds a live connection
            servers.stop_postgres(bindir, sandbox.root / "postgres", servers.RunAs.for_postgres())
            frames = lab.db.snapshot()
            findings = flat(lab.check(frames))
    finally:
        sandbox.up()
    [row] = frames["db.skipped"].to_dict("records")
    assert row["reason"] == "cannot reach PostgreSQL" and len(row["not_run"]) == 11
    assert [f.check for f in findings if f.severity.rank > Severity.INFO.rank] == ["db.skipped"]
    [outage] = [f for f in findings if f.check == "db.skipped"]  # the checks it leaves undone are named
    assert {"db.privileges", "db.lock_chain", "db.migrations", "db.stale_workers"} <= set(outage.evidence["checks"])
