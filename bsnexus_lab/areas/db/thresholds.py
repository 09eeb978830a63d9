"""The database area's thresholds, each with the reason for its default (``lab.thresholds.db``)."""

from __future__ import annotations

from dataclasses import dataclass

from bsnexus_lab.thresholds import threshold


@dataclass(frozen=True)
class DbThresholds:
    connections_warning_ratio: float = threshold(
        0.8,
        "PgHero warns at 80 % of the usable maximum (max_connections minus the reserved slots): past it, one "
        "deploy or burst of retries that opens fresh pools leaves clients refused with 'too many clients'.",
    )
    connections_critical_ratio: float = threshold(
        0.95,
        "At 95 % a handful of new sessions (a second backend replica, a migration, psql) is refused.",
    )
    idle_in_transaction_s: float = threshold(
        60.0,
        "A request's transaction lasts milliseconds; one left open a minute holds a pool slot, its row locks and "
        "the xmin horizon (vacuum cannot clean behind it). PgHero's long-running threshold is also 60 s.",
    )
    lock_wait_warning_s: float = threshold(
        5.0,
        "BSNexus's writes are single-row updates of tasks and workers that finish in milliseconds: a session "
        "waiting 5 s for a lock is already a request a user notices.",
    )
    lock_wait_critical_s: float = threshold(
        60.0,
        "After a minute the waiting requests outlive their HTTP timeouts and pile up in the pool (5 + 10 "
        "sessions): the backend stalls for every project.",
    )
    long_query_s: float = threshold(
        60.0, "PgHero's long-running query threshold: nothing BSNexus runs per request should take a minute."
    )
    slow_statement_mean_ms: float = threshold(
        20.0, "PgHero's slow-query threshold: a statement averaging 20 ms is slow for a request-path query."
    )
    slow_statement_calls: int = threshold(
        100, "PgHero's minimum calls for a slow query: a slow one-off (a report, a migration) is not a problem."
    )
    trace_history_rows: int = threshold(
        1_000, "A task's own transitions read by a trace: BSNexus retries a task 3 times, a thousand is pathological."
    )
    trace_consistency_limit: int = threshold(
        1_000,
        "A trace checks its task's row against at most this many pending and waiting entries per group (the "
        "consistency probe's page, kept small so one trace stays under a second): past it, whether a queued task "
        "was published is said to be not verified.",
    )
    trace_norm_rows: int = threshold(
        20_000,
        "How long each status usually lasts is measured over the newest transitions of task_history, this many: "
        "days of a busy deployment, read once per trace.",
    )
    seq_scan_min_rows: int = threshold(
        10_000,
        "Below ten thousand rows a sequential scan is as cheap as an index scan; above, each scan reads the table.",
    )
    seq_scan_min_scans: int = threshold(
        100, "A table scanned sequentially a hundred times is on some request path, not a one-off."
    )
    dead_tuple_ratio: float = threshold(
        0.2,
        "autovacuum starts at 20 % dead rows (autovacuum_vacuum_scale_factor): more means it is not keeping up.",
    )
    dead_tuple_min_rows: int = threshold(1_000, "Dead-row ratios of small tables swing with every update.")
    unused_index_min_bytes: int = threshold(
        1_048_576, "An unused index under 1 MB costs little to keep; above it, every write pays for nothing."
    )
    cache_hit_ratio: float = threshold(
        0.99, "PgHero's cache-hit warning: a working set that no longer fits in shared_buffers reads from disk."
    )
    wraparound_warning_ratio: float = threshold(
        0.5,
        "Half of autovacuum_freeze_max_age's distance to the 2-billion wraparound limit (PgHero warns at "
        "1 billion transactions): an anti-wraparound vacuum is running late.",
    )
    wraparound_critical_ratio: float = threshold(
        0.75, "Close to the point where PostgreSQL stops accepting writes to protect itself."
    )
    stale_heartbeat_s: float = threshold(
        120.0,
        "The workers row is written at most once a minute (worker:db_heartbeat throttles it): two missed writes "
        "mean a worker marked busy has stopped heartbeating.",
    )
    cache_min_blocks: int = threshold(
        100_000, "Below 100,000 block reads since the statistics were reset the hit ratio still reflects a cold start."
    )
    publish_grace_s: float = threshold(
        60.0,
        "BSNexus commits 'queued' and then publishes to tasks:queue: for an instant the row has no entry. A task "
        "queued a minute ago with no entry was never published.",
    )
    consistency_scan_limit: int = threshold(
        10_000, "Stream entries read per group to match tasks (XPENDING/XRANGE pages): bounded on a big backlog."
    )
