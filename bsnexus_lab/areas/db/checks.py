"""The database area's rules: pure functions of the probes' frames (see ``thresholds.py`` for the numbers).

Causes and the symptoms they explain share scope tokens: ``pg:pid:<pid>`` (a session), ``pg:app:<name>``
(an application's sessions), ``pg:table:<name>``, ``task:<uuid>``, ``db:schema``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from bsnexus_lab.areas.db.thresholds import DbThresholds
from bsnexus_lab.checkout import DISCOVERED
from bsnexus_lab.checks import REGISTRY, check, needing
from bsnexus_lab.config import Conventions
from bsnexus_lab.findings import Finding, Kind, Severity, not_checked
from bsnexus_lab.text import duration, plural

EVIDENCE_ROWS = 20  # a finding names at most this many sessions/tasks; the frame holds the rest


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 1)


def _pids(pids: Iterable[Any]) -> frozenset[str]:
    return frozenset(f"pg:pid:{int(p)}" for p in pids)


def _session(row: Any) -> dict[str, Any]:
    return {
        "pid": int(row.pid),
        "application": row.application,
        "state": row.state,
        "xact_age_s": _num(row.xact_age_s),
        "query": row.query,
    }


@check("db.skipped", "Database probes that could not run", kind=Kind.SYMPTOM)
def skipped(skipped: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    """Evidence that could not be gathered is said, not dropped: one finding per probe and reason."""
    findings = []
    for row in skipped.itertuples():
        not_run = row.not_run if isinstance(row.not_run, list) else None
        probes = [row.probe, *(not_run or [])]  # the checks these probes' frames feed stand not checked
        stands_for = needing(f"db.{p}" for p in probes)
        if row.probe == "every database":
            stands_for = sorted(c.id for c in REGISTRY.values() if c.area == "db" and c.id != "db.skipped")
        findings.append(
            not_checked(
                "db.skipped",
                f"{row.probe} probe skipped: {row.reason}"
                + (f" ({len(not_run)} later probes not run)" if not_run is not None else ""),
                area="db",
                probe=row.probe,
                reason=row.reason,
                error=row.error,
                remedy=row.remedy,
                dependency=row.dependency if isinstance(row.dependency, str) else None,
                not_run=not_run,
                checks=stands_for,
                severity=Severity(row.severity),
            )
        )
    return findings


@check("db.schema", "Database that does not look like BSNexus's", kind=Kind.CAUSE)
def schema(server: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    info = server.iloc[0]
    if info["bsnexus"]:
        return []
    return [
        Finding(
            "db.schema",
            Severity.WARNING,
            f"Database {info['database']!r} does not look like a BSNexus database "
            f"({info['bsnexus_tables']} of its 5 main tables): task, worker and migration probes were not run",
            evidence={"database": info["database"], "bsnexus_tables_found": int(info["bsnexus_tables"])},
            remedy="Check DATABASE_URL (the database name especially): BSNexus's holds projects, phases, tasks, "
            "task_history and workers. A fresh deployment gets them from `alembic upgrade head`.",
            subject=(str(info["database"]),),
            scope=frozenset({"db:schema"}),
        )
    ]


@check("db.privileges", "Statistics hidden from the lab's role", kind=Kind.CONFIG)
def privileges(server: pd.DataFrame, thresholds: DbThresholds, activity: pd.DataFrame | None = None) -> list[Finding]:
    """Graded by exposure: a warning while sessions are hidden from the lab (or it could not count them), info
    when none is (nothing is missing from this run's picture; a later session of another role would be)."""
    info = server.iloc[0]
    if info["superuser"] or info["reads_all_stats"]:
        return []
    hidden = int(activity["hidden"].sum()) if activity is not None else None
    return [
        Finding(
            "db.privileges",
            Severity.INFO if hidden == 0 else Severity.WARNING,
            f"The lab's role cannot see other roles' queries "
            f"({'sessions hidden: unknown' if hidden is None else plural(hidden, 'session') + ' hidden'}): "
            "needs pg_monitor or pg_read_all_stats",
            evidence={"hidden_sessions": hidden},
            remedy="GRANT pg_monitor TO <the lab's role>; (read-only: it adds the statistics views, nothing else). "
            "Without it, query texts, statement statistics and some lock details stay blank.",
        )
    ]


@check("db.connections", "Connections near the usable maximum")
def connections(server: pd.DataFrame, activity: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    info = server.iloc[0]
    usable, used = int(info["usable_connections"]), len(activity)
    ratio = used / usable if usable else 1.0
    if ratio < thresholds.connections_warning_ratio:
        return []
    by_app = activity["application"].fillna("").value_counts()
    severity = Severity.CRITICAL if ratio >= thresholds.connections_critical_ratio else Severity.WARNING
    return [
        Finding(
            "db.connections",
            severity,
            f"{used} of {usable} usable connections in use ({ratio:.0%}); {by_app.index[0] or '(unnamed)'} holds "
            f"{by_app.iloc[0]}",
            evidence={
                "used": used,
                "usable": usable,
                "max_connections": int(info["max_connections"]),
                "reserved": int(info["superuser_reserved"] + info["reserved"]),
                "by_application": {str(k): int(v) for k, v in by_app.head(EVIDENCE_ROWS).items()},
                "by_state": {str(k): int(v) for k, v in activity["state"].fillna("").value_counts().items()},
            },
            remedy="Find who holds them (lab.db.activity()); new sessions past the limit are refused with 'too "
            "many clients already'. Raise max_connections only after the pools are sized: the sum of every "
            "process's pool_size + max_overflow must stay under the usable maximum.",
            scope=frozenset(f"pg:app:{a}" for a in by_app.index[:3]),
        )
    ]


@check("db.pool_exhaustion", "Application pools exhausted by sessions left open", kind=Kind.CAUSE)
def pool_exhaustion(
    activity: pd.DataFrame, thresholds: DbThresholds, connections: pd.DataFrame | None = None
) -> list[Finding]:
    """Seen from the server, an exhausted SQLAlchemy pool is sessions of one application idle in transaction
    (checked out and forgotten) or a session count that sits at pool_size + max_overflow (the target's
    conventions: SQLAlchemy's 5 + 10 by default)."""
    names = Conventions.of(activity)
    pool = names.pool_size + names.max_overflow
    findings = []
    leaked = activity[
        (activity["state"] == "idle in transaction") & (activity["state_age_s"] >= thresholds.idle_in_transaction_s)
    ]
    steady = _steady_at_pool(connections, pool) if connections is not None else {}
    for app in sorted(set(leaked["application"].fillna("")) | set(steady)):
        mine = leaked[leaked["application"].fillna("") == app]
        sessions = int((activity["application"].fillna("") == app).sum())
        if len(mine) < names.pool_size and app not in steady:
            continue
        severity = Severity.CRITICAL if len(mine) >= pool or app in steady else Severity.WARNING
        what = (
            f"{len(mine)} of its {sessions} sessions idle in transaction for over "
            f"{duration(thresholds.idle_in_transaction_s)}"
            if len(mine)
            else f"a steady {steady[app]} sessions, its pool's {names.pool_size} + {names.max_overflow}"
        )
        findings.append(
            Finding(
                "db.pool_exhaustion",
                severity,
                f"{app or '(unnamed)'}: connection pool exhausted: {what}",
                evidence={
                    "application": app,
                    "sessions": sessions,
                    "idle_in_transaction": len(mine),
                    "oldest_idle_s": _num(mine["state_age_s"].max()) if len(mine) else None,
                    "pool_size": names.pool_size,
                    "max_overflow": names.max_overflow,
                    "clients": sorted(str(c) for c in mine["client"].dropna().unique())[:EVIDENCE_ROWS],
                    "last_queries": mine["query"].value_counts().head(3).to_dict(),
                    "pids": [int(p) for p in mine["pid"].head(EVIDENCE_ROWS)],
                },
                remedy="In the application: every session must end (async with async_session() as s, s.begin(): "
                "...), commit or roll back on every path, and never await an HTTP call, an LLM or a blocking "
                "XREADGROUP inside a transaction. Each process's pool (SQLAlchemy pool_size "
                f"{names.pool_size} + max_overflow {names.max_overflow}) then drains: today requests wait "
                f"pool_timeout (30 s) and fail with 'QueuePool limit of size {names.pool_size} overflow "
                f"{names.max_overflow} reached'. Safety net on the server: ALTER ROLE ... SET "
                f"idle_in_transaction_session_timeout = '60s'. Keep processes x {pool} below the usable connections.",
                subject=(app,),
                scope=frozenset({f"pg:app:{app}"}) | _pids(mine["pid"]),
            )
        )
    return findings


def _steady_at_pool(connections: pd.DataFrame, pool: int) -> dict[str, int]:
    """Applications whose session count stayed at a multiple of ``pool`` through a sampled window."""
    if connections.empty or "application" not in connections:
        return {}
    rows = connections.dropna(subset=["application"])  # gap rows (a failed tick) carry only an error
    per_tick = rows.groupby(["application", rows.index])["sessions"].sum().unstack(0).fillna(0)
    if len(per_tick) < 3:
        return {}
    return {
        str(app): int(series.iloc[0])
        for app, series in per_tick.items()
        if series.iloc[0] >= pool and series.nunique() == 1 and series.iloc[0] % pool == 0
    }


@check("db.idle_in_transaction", "Sessions idle in transaction")
def idle_in_transaction(activity: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    idle = activity[
        (activity["state"] == "idle in transaction") & (activity["state_age_s"] > thresholds.idle_in_transaction_s)
    ]
    findings = []
    for app, rows in idle.groupby(idle["application"].fillna("")):
        findings.append(
            Finding(
                "db.idle_in_transaction",
                Severity.WARNING,
                f"{len(rows)} session(s) of {app or '(unnamed)'} idle in transaction, the oldest for "
                f"{duration(rows['state_age_s'].max())}",
                evidence={
                    "sessions": [
                        _session(r) | {"idle_s": _num(r.state_age_s)} for r in rows.head(EVIDENCE_ROWS).itertuples()
                    ]
                },
                remedy="Each holds a pool slot, its locks and vacuum's horizon. Find the code path that leaves its "
                "transaction open (the last query is shown); pg_terminate_backend(pid) frees one now.",
                subject=(str(app),),
                scope=frozenset({f"pg:app:{app}"}) | _pids(rows["pid"]),
            )
        )
    return findings


@check("db.long_queries", "Long-running queries")
def long_queries(activity: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    running = activity[(activity["state"] == "active") & (activity["query_age_s"] > thresholds.long_query_s)]
    return [
        Finding(
            "db.long_queries",
            Severity.WARNING,
            f"pid {int(r.pid)} ({r.application or 'unnamed'}) has run one statement for {duration(r.query_age_s)}",
            evidence=_session(r) | {"query_age_s": _num(r.query_age_s), "wait_event": r.wait_event},
            remedy="EXPLAIN it (lab.db.explain(sql)); a request-path query should not run a minute. "
            "pg_cancel_backend(pid) stops it.",
            subject=(str(int(r.pid)),),
            scope=_pids([r.pid]),
        )
        for r in running.itertuples()
    ]


@check("db.lock_chain", "Sessions blocked behind a lock", kind=Kind.CAUSE)
def lock_chain(locks: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    """The root blocker is the cause; its waiters (at any depth) are its evidence, not findings of their own."""
    findings = []
    for root, tree in locks.groupby("root", sort=False):
        head = tree[tree["pid"] == root].iloc[0]
        waiters = tree[tree["depth"] > 0]
        longest = float(waiters["wait_s"].max() or 0) if len(waiters) else 0.0
        if longest < thresholds.lock_wait_warning_s:
            continue
        severity = Severity.CRITICAL if longest >= thresholds.lock_wait_critical_s else Severity.WARNING
        findings.append(
            Finding(
                "db.lock_chain",
                severity,
                f"pid {int(root)} ({head['application'] or 'unnamed'}, {head['state']}, transaction open "
                f"{duration(head['xact_age_s'])}) blocks {waiters['pid'].nunique()} session(s), "
                f"{int(tree['depth'].max())} deep; the longest has waited {duration(longest)}",
                evidence={
                    "root": _session(head),
                    "waiters": [
                        {
                            "pid": int(w.pid),
                            "application": w.application,
                            "depth": int(w.depth),
                            "blocked_by": [int(p) for p in w.blocked_by],
                            "wait_s": _num(w.wait_s),
                            "lock": w.lock,
                            "query": w.query,
                        }
                        for w in waiters.head(EVIDENCE_ROWS).itertuples()
                    ],
                },
                remedy=f"The root's transaction must end: if it is idle in transaction its application forgot it "
                f"(see db.pool_exhaustion); SELECT pg_terminate_backend({int(root)}) releases every waiter now. "
                "Keep BSNexus's row updates (tasks, workers) in short transactions.",
                subject=(str(int(root)),),
                scope=_pids([root, *waiters["pid"]]),
            )
        )
    return findings


@check("db.slow_statements", "Slow statements")
def slow_statements(statements: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    slow = statements[
        (statements["mean_ms"] >= thresholds.slow_statement_mean_ms)
        & (statements["calls"] >= thresholds.slow_statement_calls)
    ]
    return [
        Finding(
            "db.slow_statements",
            Severity.WARNING,
            f"A statement on {', '.join(r.tables) or 'an unknown table'} averages {r.mean_ms:.0f} ms over "
            f"{int(r.calls)} calls ({r.share_pct:.0f} % of the database's time)",
            evidence={
                "queryid": r.queryid,
                "calls": int(r.calls),
                "mean_ms": _num(r.mean_ms),
                "total_ms": _num(r.total_ms),
                "rows_per_call": _num(r.rows / r.calls) if r.calls else None,
                "blocks_per_call": _num(r.blocks / r.calls) if r.calls else None,
                "query": r.query,
            },
            remedy="EXPLAIN it (lab.db.explain(query)); many blocks per row returned means a scan an index "
            "would avoid.",
            subject=(str(r.queryid),),
            scope=frozenset(f"pg:table:{t}" for t in r.tables),
        )
        for r in slow.itertuples()
    ]


@check("db.seq_scans", "Large tables read by sequential scans", kind=Kind.CAUSE)
def seq_scans(tables: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    per_scan = tables["seq_tup_read"] / tables["seq_scan"].where(tables["seq_scan"] > 0)
    heavy = tables[
        (tables["live_rows"] >= thresholds.seq_scan_min_rows)
        & (tables["seq_scan"] >= thresholds.seq_scan_min_scans)
        & (per_scan >= thresholds.seq_scan_min_rows)
        & (tables["seq_scan"] > tables["idx_scan"])
    ]
    return [
        Finding(
            "db.seq_scans",
            Severity.WARNING,
            f"{r.table}: {int(r.seq_scan)} sequential scans of ~{int(r.live_rows):,} rows, {int(r.idx_scan)} index "
            "scans: a query filters it on an unindexed column",
            evidence={
                "table": r.table,
                "seq_scan": int(r.seq_scan),
                "rows_per_scan": int(r.seq_tup_read // r.seq_scan),
                "idx_scan": int(r.idx_scan),
                "live_rows": int(r.live_rows),
                "table_bytes": int(r.table_bytes),
            },
            remedy=f"Find the statement (lab.db.statements(), tables containing {r.table!r}), EXPLAIN it, and add "
            "the index its WHERE clause needs in an Alembic migration (CREATE INDEX CONCURRENTLY on a live "
            "database). BSNexus's task_history has no index on task_id.",
            subject=(str(r.table),),
            scope=frozenset({f"pg:table:{r.table}"}),
        )
        for r in heavy.itertuples()
    ]


@check("db.dead_tuples", "Tables with many dead rows")
def dead_tuples(tables: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    bloated = tables[
        (tables["dead_rows"] >= thresholds.dead_tuple_min_rows) & (tables["dead_ratio"] >= thresholds.dead_tuple_ratio)
    ]
    return [
        Finding(
            "db.dead_tuples",
            Severity.WARNING,
            f"{r.table}: {int(r.dead_rows):,} dead rows ({r.dead_ratio:.0%}); autovacuum is not keeping up",
            evidence={
                "table": r.table,
                "dead_rows": int(r.dead_rows),
                "live_rows": int(r.live_rows),
                "last_autovacuum": str(r.last_autovacuum),
                "last_vacuum": str(r.last_vacuum),
            },
            remedy="A long transaction (db.idle_in_transaction) holds vacuum back; otherwise lower the table's "
            "autovacuum_vacuum_scale_factor. VACUUM (VERBOSE) shows what it could not remove.",
            subject=(str(r.table),),
            scope=frozenset({f"pg:table:{r.table}"}),
        )
        for r in bloated.itertuples()
    ]


@check("db.indexes", "Unused, duplicate and invalid indexes", kind=Kind.CONFIG)
def index_health(indexes: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    findings = []
    for r in indexes.itertuples():
        common = {"index": r.index, "table": r.table, "bytes": int(r.bytes), "definition": r.definition}
        if not r.is_valid:
            findings.append(
                Finding(
                    "db.indexes",
                    Severity.WARNING,
                    f"{r.index} on {r.table} is invalid (a failed CREATE INDEX CONCURRENTLY): writes maintain it, "
                    "no query uses it",
                    evidence=common,
                    remedy=f"DROP INDEX CONCURRENTLY {r.index}; then create it again.",
                    subject=("invalid", str(r.index)),
                )
            )
        elif isinstance(r.duplicate_of, str):
            small = r.bytes < thresholds.unused_index_min_bytes  # exposure: what every write pays for it
            findings.append(
                Finding(
                    "db.indexes",
                    Severity.INFO if small else Severity.WARNING,
                    f"{r.index} on {r.table} duplicates {r.duplicate_of}",
                    evidence=common | {"duplicate_of": r.duplicate_of},
                    remedy=f"DROP INDEX CONCURRENTLY {r.index}; (in a migration, so the next deploy does not bring "
                    "it back).",
                    subject=("duplicate", str(r.index)),
                )
            )
        elif (
            r.idx_scan == 0
            and not (r.is_unique or r.is_primary or r.backs_constraint)
            and r.bytes >= thresholds.unused_index_min_bytes
        ):
            findings.append(
                Finding(
                    "db.indexes",
                    Severity.INFO,
                    f"{r.index} on {r.table} ({r.bytes / 1_048_576:.1f} MB) has not been used since the statistics "
                    "were reset",
                    evidence=common,
                    remedy="Confirm over a full business cycle (and on replicas) before dropping it.",
                    subject=("unused", str(r.index)),
                )
            )
    return findings


@check("db.cache_hit", "Low cache hit ratio")
def cache_hit(databases: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    low = databases[
        databases["current"].astype(bool)
        & (databases["blocks"] >= thresholds.cache_min_blocks)
        & (databases["cache_hit_ratio"] < thresholds.cache_hit_ratio)
    ]
    return [
        Finding(
            "db.cache_hit",
            Severity.WARNING,
            f"{r.database}: {r.cache_hit_ratio:.1%} of block reads hit shared buffers",
            evidence={
                "database": r.database,
                "cache_hit_ratio": round(float(r.cache_hit_ratio), 4),
                "blocks": int(r.blocks),
            },
            remedy="A sequential scan of a large table (db.seq_scans) evicts the working set; otherwise raise "
            "shared_buffers.",
            subject=(str(r.database),),
        )
        for r in low.itertuples()
    ]


@check("db.wraparound", "Transaction-ID wraparound", kind=Kind.CAUSE)
def wraparound(databases: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    old = databases[databases["wraparound_ratio"] >= thresholds.wraparound_warning_ratio]
    return [
        Finding(
            "db.wraparound",
            Severity.CRITICAL if r.wraparound_ratio >= thresholds.wraparound_critical_ratio else Severity.WARNING,
            f"{r.database}: oldest transaction ID is {int(r.xid_age):,} old, {r.wraparound_ratio:.0%} of the way to "
            "wraparound",
            evidence={"database": r.database, "xid_age": int(r.xid_age), "freeze_max_age": int(r.freeze_max_age)},
            remedy="Find what stops freezing (a long transaction, an abandoned replication slot or prepared "
            "transaction), then VACUUM (FREEZE) the oldest tables.",
            subject=(str(r.database),),
        )
        for r in old.itertuples()
    ]


@check("db.migrations", "Schema not at the expected Alembic revision", kind=Kind.CAUSE)
def migrations(migrations: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    m = migrations.iloc[0]
    current = ", ".join(m["current"]) or "nothing"
    titles = {
        "behind": f"Database at revision {current}, head is {m['expected']}: {m['behind']} migration(s) behind",
        "ahead": f"Database at revision {current}, which is not an ancestor of {m['expected']}: the code is older "
        "than the schema",
        "unknown": f"Database at revision {current}, which the versions directory does not hold",
        "several heads": f"The versions directory has {len(m['heads'])} heads ({', '.join(m['heads'])}): a merge "
        "revision is missing",
        "empty": "alembic_version is empty: the schema was never stamped",
        "missing": "No alembic_version table: this database was never migrated with Alembic",
        "differs": f"Database at revision {current}, expected {m['expected']}",
    }
    if m["state"] not in titles:
        return []
    source = m.get("versions_source")
    from_checkout = isinstance(source, str) and source.startswith(DISCOVERED)
    on_disk = " (head from the checkout's code on disk, which may differ from what is deployed)"
    return [
        Finding(
            "db.migrations",
            Severity.WARNING,
            titles[m["state"]] + (on_disk if from_checkout and m["state"] not in {"empty", "missing"} else ""),
            evidence={
                "current": list(m["current"]),
                "expected": m["expected"],
                "heads": list(m["heads"]),
                "not_applied": list(m["not_applied"]),
                "unknown": list(m["unknown"]),
                "versions_dir": m["versions_dir"],
                "versions_source": source,
            },
            remedy="Run `alembic upgrade head` and read its error: a migration that stops the chain is usually "
            "one that adds an enum value and uses it in the same transaction (PostgreSQL refuses that before "
            "commit); split it, or commit in between (op.get_context().autocommit_block())."
            + (
                " The head is the checkout's: if the deployed backend runs other code, compare against its own "
                "versions (set versions_dir or expected_head)."
                if from_checkout
                else ""
            ),
            subject=(str(m["state"]),),
            scope=frozenset({"db:schema"}),
        )
    ]


FAULT_TEXT = {
    "lost_publish": (
        Severity.CRITICAL,
        "{n} task(s) queued with no entry in {stream} (lost publish): their projects never queue again",
        "Republish them (the board's retry, or set the task back to ready so 'queue next' publishes it). Publishing "
        "after the commit without a retry loses the message when Redis blips.",
    ),
    "expired_worker": (
        Severity.WARNING,
        "{n} task(s) in_progress for a worker whose registry key expired",
        "The worker died mid-task; its task holds its project's queue. Move the task back to ready (or redesign) "
        "once the worker is confirmed gone.",
    ),
    "missed_ack": (
        Severity.WARNING,
        "{n} stream entr(y/ies) still pending for tasks already done (missed ack)",
        "The consumer re-reads its pending entries on every poll and will run the task again. XACK them "
        "(lab.streams remediation, dry run first).",
    ),
    "misrouted_qa": (
        Severity.CRITICAL,
        "{n} task(s) in review whose {stream} entry is pending on another worker than their reviewer",
        "The holder skips it on every poll and the reviewer never gets it: XCLAIM the entry to the task's "
        "reviewer_id (dry run first).",
    ),
    "unverified": (
        Severity.INFO,
        "Lost publishes not checked: {stream} holds more entries than the scan limit, or pending entries "
        "whose bodies were trimmed",
        "Raise thresholds.db.consistency_scan_limit for a one-off deeper scan; trimmed bodies are the streams "
        "area's finding.",
    ),
}


@check("db.consistency", "Tasks whose PostgreSQL row and Redis stream disagree", kind=Kind.CAUSE)
def consistency(consistency: pd.DataFrame, thresholds: DbThresholds) -> list[Finding]:
    """One finding per fault; a dead consumer's tasks are left to streams.dead_consumer (no second copy), and a
    misrouted QA task is a symptom that nests under streams.misrouted_qa when the streams checks ran too."""
    findings = []
    rows = consistency[consistency["fault"] != "dead_consumer"]
    rows = rows[~((rows["fault"] == "lost_publish") & (rows["age_s"] < thresholds.publish_grace_s))]
    for fault, group in rows.groupby("fault", sort=False):
        severity, title, remedy = FAULT_TEXT[str(fault)]
        tasks = [
            {k: (_num(v) if k in ("idle_s", "age_s") else v) for k, v in r.items() if v is not None and not _na(v)}
            for r in group.drop(columns="fault").head(EVIDENCE_ROWS).to_dict("records")
        ]
        findings.append(
            Finding(
                "db.consistency",
                severity,
                title.format(n=len(group), stream=next(iter(group["stream"].dropna()), "the stream")),
                kind=Kind.SYMPTOM if fault == "misrouted_qa" else None,  # streams.misrouted_qa names the entry
                evidence={"fault": fault, "tasks": tasks},
                remedy=remedy,
                subject=(str(fault),),
                scope=frozenset(f"task:{t}" for t in group["task_id"].dropna()),
            )
        )
    return findings


def _na(value: Any) -> bool:
    return not isinstance(value, list | tuple | dict) and bool(pd.isna(value))


@check("db.stale_workers", "Workers marked busy whose heartbeat stopped")
def stale_workers(
    workers: pd.DataFrame, thresholds: DbThresholds, consistency: pd.DataFrame | None = None
) -> list[Finding]:
    """A live registry key means the worker heartbeats (its row is written at most once a minute); workers that
    hold stream entries or tasks are reported with those (streams.dead_consumer, db.consistency)."""
    told = set(consistency["consumer"].dropna()) if consistency is not None else set()
    stale = workers[
        (workers["status"] == "busy")
        & (workers["heartbeat_age_s"] > thresholds.stale_heartbeat_s)
        & workers["registered"].ne(True)
        & ~workers["worker_id"].isin(told)
    ]
    return [
        Finding(
            "db.stale_workers",
            Severity.WARNING,
            f"Worker {r.name} ({r.worker_id}) is marked busy, last heartbeat {duration(r.heartbeat_age_s)} ago",
            evidence={"worker_id": r.worker_id, "name": r.name, "current_task_id": r.current_task_id},
            remedy="Its workers row is stale: the dashboard shows it busy while nothing runs. Check the worker "
            "process; set the row offline once it is confirmed gone.",
            subject=(str(r.worker_id),),
            scope=frozenset({f"task:{r.current_task_id}"} if isinstance(r.current_task_id, str) else ()),
        )
        for r in stale.itertuples()
    ]
