"""The database area's rules on hand-built frames: thresholds at their edges, the blocking tree, migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bsnexus_lab.areas import default_thresholds
from bsnexus_lab.areas.db import checks, migrations
from bsnexus_lab.areas.db.activity import ACTIVITY_COLUMNS
from bsnexus_lab.areas.db.consistency import CONSISTENCY_COLUMNS
from bsnexus_lab.areas.db.locks import blocking_tree
from bsnexus_lab.areas.db.snapshot import SKIPPED_COLUMNS
from bsnexus_lab.areas.db.thresholds import DbThresholds
from bsnexus_lab.checks import run
from bsnexus_lab.findings import Kind, Severity, Unavailable
from bsnexus_lab.sandbox.scenarios.db import VERSIONS_DIR

T = DbThresholds()


def server(usable: int = 97, bsnexus: bool = True, **overrides: Any) -> pd.DataFrame:
    row = {
        "database": "bsnexus",
        "max_connections": usable + 3,
        "superuser_reserved": 3,
        "reserved": 0,
        "usable_connections": usable,
        "superuser": False,
        "reads_all_stats": True,
        "bsnexus_tables": 5 if bsnexus else 0,
        "bsnexus": bsnexus,
    }
    return pd.DataFrame([row | overrides])


def session(pid: int, application: str = "bsnexus-backend", state: str = "idle", **ages: float) -> dict[str, Any]:
    row = dict.fromkeys(ACTIVITY_COLUMNS) | {"pid": pid, "application": application, "state": state}
    return row | {"state_age_s": 0.0, "query_age_s": 0.0, "xact_age_s": None, "query": "SELECT 1"} | ages


def activity(*rows: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=ACTIVITY_COLUMNS)
    frame["hidden"] = False
    return frame


@pytest.mark.parametrize(
    ("used", "severity"), [(77, None), (78, Severity.WARNING), (92, Severity.WARNING), (93, Severity.CRITICAL)]
)
def test_connections_warn_at_80_and_are_critical_at_95_percent_of_the_usable_maximum(
    used: int, severity: Severity | None
) -> None:
    found = checks.connections(server(usable=97), activity(*(session(p) for p in range(used))), T)
    assert [f.severity for f in found] == ([severity] if severity else [])
    if found:
        assert found[0].evidence["used"] == used and found[0].evidence["usable"] == 97
        assert "pg:app:bsnexus-backend" in found[0].scope


def test_idle_in_transaction_warns_past_60_seconds_per_application() -> None:
    frame = activity(
        session(1, state="idle in transaction", state_age_s=61),
        session(2, state="idle in transaction", state_age_s=59),
        session(3, "bsnexus-worker", state="idle in transaction", state_age_s=300),
    )
    found = {f.subject: f for f in checks.idle_in_transaction(frame, T)}
    assert set(found) == {("bsnexus-backend",), ("bsnexus-worker",)}
    assert [s["pid"] for s in found[("bsnexus-backend",)].evidence["sessions"]] == [1]
    assert found[("bsnexus-worker",)].severity == Severity.WARNING
    assert "pg:pid:3" in found[("bsnexus-worker",)].scope


def test_pool_exhaustion_is_a_cause_from_a_pool_s_worth_of_leaked_sessions() -> None:
    leaked = [session(p, state="idle in transaction", state_age_s=120) for p in range(4)]
    assert checks.pool_exhaustion(activity(*leaked), T) == []
    five = activity(*leaked, session(9, state="idle in transaction", state_age_s=120), session(10))
    [found] = checks.pool_exhaustion(five, T)
    assert found.severity == Severity.WARNING
    assert found.evidence["idle_in_transaction"] == 5 and found.evidence["sessions"] == 6
    assert "pool_size 5 + max_overflow 10" in found.remedy and "idle_in_transaction_session_timeout" in found.remedy
    fifteen = activity(*(session(p, state="idle in transaction", state_age_s=120) for p in range(15)))
    assert checks.pool_exhaustion(fifteen, T)[0].severity == Severity.CRITICAL


def test_pool_exhaustion_from_a_count_steady_at_pool_size_plus_overflow() -> None:
    times = pd.to_datetime(["2026-11-29 12:00:00", "2026-11-29 12:00:01", "2026-11-29 12:00:02"], utc=True)
    steady = pd.DataFrame(
        {"application": ["api"] * 3 + ["web"] * 3, "state": ["active"] * 6, "sessions": [15, 15, 15, 3, 4, 3]},
        index=list(times) * 2,
    )
    [found] = checks.pool_exhaustion(activity(session(1, "api")), T, connections=steady)
    assert found.subject == ("api",) and "steady 15 sessions" in found.title


def test_lock_waits_warn_past_5_seconds_and_are_critical_past_60() -> None:
    def tree(wait: float) -> pd.DataFrame:
        return blocking_tree(
            [
                {"pid": 10, "blocked_by": [], "application": "orchestrator", "state": "idle in transaction"},
                {"pid": 11, "blocked_by": [10], "application": "api", "state": "active", "wait_s": wait},
            ]
        )

    assert checks.lock_chain(tree(4.9), T) == []
    assert checks.lock_chain(tree(5.1), T)[0].severity == Severity.WARNING
    assert checks.lock_chain(tree(61), T)[0].severity == Severity.CRITICAL


def test_blocking_tree_puts_root_blockers_first_and_shows_every_blocker_of_a_waiter() -> None:
    sessions = [
        {"pid": 30, "blocked_by": [20, 21], "wait_s": 9.0},
        {"pid": 20, "blocked_by": [10], "wait_s": 12.0},
        {"pid": 21, "blocked_by": [], "xact_age_s": 5.0},
        {"pid": 10, "blocked_by": [], "xact_age_s": 90.0},
    ]
    tree = blocking_tree(sessions)
    assert list(zip(tree["root"], tree["pid"], tree["depth"], strict=True)) == [
        (10, 10, 0),
        (10, 20, 1),
        (10, 30, 2),
        (21, 21, 0),
        (21, 30, 1),
    ]
    assert tree.loc[tree["pid"] == 30, "blocked_by"].iloc[0] == [20, 21]
    [first, second] = checks.lock_chain(tree, T)
    assert first.subject == ("10",)
    assert first.scope == frozenset({"pg:pid:10", "pg:pid:20", "pg:pid:30"})
    assert [w["pid"] for w in first.evidence["waiters"]] == [20, 30]
    assert second.scope == frozenset({"pg:pid:21", "pg:pid:30"})


def test_a_deadlock_cycle_still_gets_a_root() -> None:
    tree = blocking_tree(
        [{"pid": 1, "blocked_by": [2], "xact_age_s": 3.0}, {"pid": 2, "blocked_by": [1], "xact_age_s": 8.0}]
    )
    assert list(tree["pid"]) == [2, 1] and list(tree["depth"]) == [0, 1]


def consistency_rows(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([dict.fromkeys(CONSISTENCY_COLUMNS) | r for r in rows], columns=CONSISTENCY_COLUMNS)


def test_consistency_leaves_a_dead_consumer_to_the_streams_area_and_waits_out_the_publish_grace() -> None:
    frame = consistency_rows(
        {"fault": "dead_consumer", "task_id": "a", "consumer": "w1", "age_s": 900.0},
        {"fault": "lost_publish", "task_id": "b", "age_s": 10.0},
        {"fault": "lost_publish", "task_id": "c", "age_s": 600.0},
        {"fault": "misrouted_qa", "task_id": "d", "consumer": "w2", "expected_consumer": "w3", "age_s": 5.0},
    )
    found = {f.subject: f for f in checks.consistency(frame, T)}
    assert set(found) == {("lost_publish",), ("misrouted_qa",)}
    assert found[("lost_publish",)].scope == frozenset({"task:c"})
    assert found[("misrouted_qa",)].evidence["tasks"][0]["expected_consumer"] == "w3"
    workers = pd.DataFrame(
        [
            {
                "worker_id": "w1",
                "name": "gone",
                "status": "busy",
                "current_task_id": "a",
                "heartbeat_age_s": 900.0,
                "registered": False,
            }
        ]
    )
    assert checks.stale_workers(workers, T, consistency=frame) == []
    assert checks.stale_workers(workers, T)[0].subject == ("w1",)


def test_a_database_without_bsnexus_tables_is_said_once() -> None:
    [found] = checks.schema(server(bsnexus=False), T)
    assert "does not look like a BSNexus database" in found.title
    assert checks.schema(server(), T) == []


def test_skipped_probes_are_findings_in_their_dependency_s_scope() -> None:
    skipped = pd.DataFrame(
        [
            {
                "probe": "locks",
                "reason": "timed out",
                "severity": "warning",
                "dependency": None,
                "error": "x",
                "remedy": "",
            },
            {
                "probe": "consistency",
                "reason": "Redis unreachable",
                "severity": "warning",
                "dependency": "redis",
                "error": "cannot reach Redis",
                "remedy": "",
            },
            {
                "probe": "server",
                "reason": "cannot reach PostgreSQL",
                "severity": "warning",
                "dependency": "postgresql",
                "error": "cannot reach PostgreSQL (postgresql+asyncpg://bsnexus:***@db:5432/bsnexus)",
                "remedy": "",
                "not_run": ["activity", "locks"],
            },
        ],
        columns=SKIPPED_COLUMNS,
    )
    locks, redis, postgres = checks.skipped(skipped, T)
    assert locks.title == "locks probe skipped: timed out" and locks.scope == frozenset()
    assert redis.scope == frozenset({"dep:redis"})
    assert postgres.title == "server probe skipped: cannot reach PostgreSQL (2 later probes not run)"
    assert postgres.evidence["not_run"] == ["activity", "locks"] and postgres.scope == frozenset({"dep:postgresql"})


def test_migration_states(tmp_path: Path) -> None:
    graph, unparsed = migrations.read_versions(VERSIONS_DIR)
    assert unparsed == [] and migrations.heads(graph) == ["e8a0c2e4f6b9"]
    assert graph["c5e7a9b1d3f6"].down_revisions == ("a4c8e1f2b3d5", "b9d3f5a7c1e4")
    behind = migrations.compare(["a4c8e1f2b3d5"], graph, None)
    assert behind["state"] == "behind" and behind["behind"] == 4
    assert behind["not_applied"] == ["b9d3f5a7c1e4", "c5e7a9b1d3f6", "d2f4b6c8e0a1", "e8a0c2e4f6b9"]
    assert migrations.compare(["e8a0c2e4f6b9"], graph, None)["state"] == "current"
    assert migrations.compare(["0badc0ffee00"], graph, None)["state"] == "unknown"
    assert migrations.compare(["e8a0c2e4f6b9"], graph, "d2f4b6c8e0a1")["state"] == "ahead"
    assert migrations.compare([], graph, None)["state"] == "empty"
    branch = tmp_path / "versions"
    branch.mkdir()
    for path in VERSIONS_DIR.glob("*.py"):
        if not path.name.startswith(("c5e7", "d2f4", "e8a0")):
            (branch / path.name).write_text(path.read_text())
    (branch / "notes.py").write_text("x = 1\n")
    graph, unparsed = migrations.read_versions(branch)
    assert migrations.heads(graph) == ["a4c8e1f2b3d5", "b9d3f5a7c1e4"] and unparsed == ["notes.py"]
    several = migrations.compare(["a4c8e1f2b3d5"], graph, None)
    [found] = checks.migrations(pd.DataFrame([several | {"versions_dir": str(branch)}]), T)
    assert several["state"] == "several heads" and "2 heads" in found.title


def test_reading_a_versions_directory_that_is_not_one_is_a_config_error(tmp_path: Path) -> None:
    from bsnexus_lab.errors import ConfigError

    with pytest.raises(ConfigError, match="no Alembic versions directory"):
        migrations.read_versions(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no Alembic revisions"):
        migrations.read_versions(tmp_path)


def test_table_index_and_database_health_rules() -> None:
    tables = pd.DataFrame(
        [
            {
                "table": "task_history",
                "live_rows": 50_000,
                "dead_rows": 0,
                "dead_ratio": 0.0,
                "seq_scan": 120,
                "seq_tup_read": 6_000_000,
                "idx_scan": 3,
                "table_bytes": 8_000_000,
                "last_autovacuum": None,
                "last_vacuum": None,
            },
            {
                "table": "tasks",
                "live_rows": 8_000,
                "dead_rows": 2_500,
                "dead_ratio": 0.24,
                "seq_scan": 500,
                "seq_tup_read": 4_000_000,
                "idx_scan": 10,
                "table_bytes": 900_000,
                "last_autovacuum": None,
                "last_vacuum": None,
            },
        ]
    )
    assert [f.subject for f in checks.seq_scans(tables, T)] == [("task_history",)]  # tasks: too small to matter
    assert [f.subject for f in checks.dead_tuples(tables, T)] == [("tasks",)]
    index = {
        "schema": "public",
        "table": "tasks",
        "idx_scan": 0,
        "is_unique": False,
        "is_primary": False,
        "is_valid": True,
        "backs_constraint": False,
        "definition": "CREATE INDEX ...",
        "duplicate_of": None,
    }
    indexes = pd.DataFrame(
        [
            index | {"index": "ix_unused", "bytes": 2_000_000},
            index | {"index": "ix_small", "bytes": 16_384},
            index | {"index": "ix_copy", "bytes": 16_384, "idx_scan": 9, "duplicate_of": "ix_tasks_worker"},
            index | {"index": "ix_big_copy", "bytes": 50_000_000, "idx_scan": 9, "duplicate_of": "ix_tasks_project"},
            index | {"index": "ix_broken", "bytes": 16_384, "is_valid": False},
        ]
    )
    found = {f.subject: f.severity for f in checks.index_health(indexes, T)}
    assert found == {
        ("unused", "ix_unused"): Severity.INFO,
        ("duplicate", "ix_copy"): Severity.INFO,  # graded by exposure: a 16 kB copy costs writes next to nothing
        ("duplicate", "ix_big_copy"): Severity.WARNING,
        ("invalid", "ix_broken"): Severity.WARNING,
    }
    databases = pd.DataFrame(
        [
            {
                "database": "bsnexus",
                "xid_age": 1_700_000_000,
                "freeze_max_age": 200_000_000,
                "wraparound_ratio": 1_700_000_000 / 2_147_483_647,
                "cache_hit_ratio": 0.95,
                "blocks": 2_000_000,
                "current": True,
            },
            {
                "database": "postgres",
                "xid_age": 1_100_000_000,
                "freeze_max_age": 200_000_000,
                "wraparound_ratio": 1_100_000_000 / 2_147_483_647,
                "cache_hit_ratio": 0.5,
                "blocks": 10,
                "current": False,
            },
        ]
    )
    assert {f.subject: f.severity for f in checks.wraparound(databases, T)} == {
        ("bsnexus",): Severity.CRITICAL,
        ("postgres",): Severity.WARNING,
    }
    assert [f.subject for f in checks.cache_hit(databases, T)] == [("bsnexus",)]


def test_privileges_and_long_queries() -> None:
    [hidden] = checks.privileges(server(reads_all_stats=False), T, activity(session(1), session(2)).assign(hidden=True))
    assert hidden.evidence["hidden_sessions"] == 2 and "pg_monitor" in hidden.title
    assert checks.privileges(server(), T) == []
    running = activity(session(7, state="active", query_age_s=61), session(8, state="active", query_age_s=59))
    [long] = checks.long_queries(running, T)
    assert long.subject == ("7",) and long.scope == frozenset({"pg:pid:7"})


def test_why_a_probe_was_skipped_is_said_in_words() -> None:
    from bsnexus_lab.areas.db.snapshot import skipped_row
    from bsnexus_lab.errors import LabError, QueryTimedOut, TargetUnreachable

    url = "postgresql://bsnexus:***@db:5432/bsnexus"
    timed_out = skipped_row("locks", QueryTimedOut("PostgreSQL did not answer in time", target=url))
    assert timed_out["reason"] == "timed out" and timed_out["dependency"] is None
    denied = LabError("PostgreSQL query failed", target=url, hint="permission denied for function pg_ls_dir")
    assert skipped_row("tables", denied)["reason"] == "needs pg_monitor or pg_read_all_stats"
    assert skipped_row("tasks", denied)["reason"] == "permission denied on BSNexus's tables"
    down = skipped_row("consistency", TargetUnreachable("cannot reach Redis", target="redis://:***@r:6379/0"))
    assert down["reason"] == "cannot reach Redis" and down["dependency"] == "redis"


def test_without_a_versions_directory_the_schema_is_not_checked_never_none_found() -> None:
    missing = Unavailable(migrations.NO_VERSIONS, remedy=migrations.NO_VERSIONS_REMEDY)
    [found] = run({"db.migrations": missing}, thresholds=default_thresholds(), area="db")
    assert found.kind is Kind.NOT_CHECKED and found.severity is Severity.INFO
    assert found.title == "Schema not at the expected Alembic revision: not checked: no Alembic versions directory"
    assert found.remedy.startswith("set versions_dir") and "BSNexus's checkout" in found.remedy


def test_a_head_read_from_the_checkout_says_it_is_the_code_on_disk() -> None:
    graph, _ = migrations.read_versions(VERSIONS_DIR)
    behind = migrations.compare(["a4c8e1f2b3d5"], graph, None) | {"versions_dir": str(VERSIONS_DIR)}
    source = "checkout: /workspace/backend/alembic.ini script_location"
    [checkout] = checks.migrations(pd.DataFrame([behind | {"versions_source": source}]), T)
    assert checkout.title == (
        "Database at revision a4c8e1f2b3d5, head is e8a0c2e4f6b9: 4 migration(s) behind (head from the checkout's "
        "code on disk, which may differ from what is deployed)"
    )
    assert checkout.evidence["versions_source"] == source and "compare against its own versions" in checkout.remedy
    [chosen] = checks.migrations(pd.DataFrame([behind | {"versions_source": "argument"}]), T)
    assert chosen.title.endswith("4 migration(s) behind") and chosen.evidence["versions_source"] == "argument"
