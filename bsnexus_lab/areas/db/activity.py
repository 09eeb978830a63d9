"""Who is connected and doing what: the server's limits and one row per session (the lab's own left out).

Every statement the area sends starts with :data:`MARKER`, so the statement statistics can leave the lab's
own queries out as well; its sessions are named ``bsnexus-lab`` (``application_name``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bsnexus_lab.clients import APPLICATION_NAME

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

MARKER = "/* bsnexus-lab */"
BSNEXUS_TABLES = ("projects", "phases", "tasks", "task_history", "workers")
QUERY_CHARS = 300  # enough to recognise a statement; a long one stays a line in a report

# Client sessions other than the lab's. Without pg_read_all_stats, other roles' rows show no backend_type
# (nor state or query), but a database name: background processes have none.
CLIENT_SESSIONS = f"""(backend_type = 'client backend' OR (backend_type IS NULL AND datname IS NOT NULL))
  AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM '{APPLICATION_NAME}'"""

SERVER_SQL = f"""{MARKER}
SELECT current_database() AS database,
       current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       COALESCE(current_setting('reserved_connections', true), '0')::int AS reserved,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS reads_all_stats,
       (SELECT setting LIKE '%pg_stat_statements%' FROM pg_settings WHERE name = 'shared_preload_libraries')
           AS statements_preloaded,  -- NULL: the role may not read it (pg_read_all_settings)
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS statements_installed,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() AND c.relname = ANY(:bsnexus))::int
         AS bsnexus_tables,
       to_regclass('alembic_version') IS NOT NULL AS has_alembic_version,
       (SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}')::int AS lab_sessions
"""

ACTIVITY_SQL = f"""{MARKER}
SELECT pid, datname AS database, usename AS user, application_name AS application,
       host(client_addr) AS client, state, wait_event_type, wait_event, backend_type,
       extract(epoch FROM now() - backend_start) AS backend_age_s,
       extract(epoch FROM now() - xact_start) AS xact_age_s,
       extract(epoch FROM now() - query_start) AS query_age_s,
       extract(epoch FROM now() - state_change) AS state_age_s,
       left(query, {QUERY_CHARS}) AS query,
       CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) END AS blocked_by
FROM pg_stat_activity
WHERE {CLIENT_SESSIONS}
ORDER BY xact_start NULLS LAST, pid
"""
ACTIVITY_COLUMNS = [
    "pid",
    "database",
    "user",
    "application",
    "client",
    "state",
    "wait_event_type",
    "wait_event",
    "backend_type",
    "backend_age_s",
    "xact_age_s",
    "query_age_s",
    "state_age_s",
    "query",
    "blocked_by",
]
HIDDEN = "<insufficient privilege>"  # what pg_stat_activity shows of other roles' sessions without pg_read_all_stats


async def server(ctx: Context) -> pd.DataFrame:
    """One row: version, connection limits, the lab's privileges, what the schema holds."""
    frame = await ctx.query(SERVER_SQL, bsnexus=list(BSNEXUS_TABLES))
    frame["usable_connections"] = frame["max_connections"] - frame["superuser_reserved"] - frame["reserved"]
    frame["bsnexus"] = frame["bsnexus_tables"] == len(BSNEXUS_TABLES)
    return frame


async def activity(ctx: Context) -> pd.DataFrame:
    """One row per client session other than the lab's, with its ages and the pids blocking it."""
    frame = await ctx.query(ACTIVITY_SQL)
    frame = frame.reindex(columns=ACTIVITY_COLUMNS)
    frame["blocked_by"] = frame["blocked_by"].map(lambda pids: sorted(pids) if pids is not None else [])
    frame["hidden"] = frame["query"].eq(HIDDEN)
    return ctx.target.conventions.stamp(frame)  # db.pool_exhaustion judges it by the service's pool size


def summary(activity: pd.DataFrame) -> pd.DataFrame:
    """Sessions grouped by application, state, client and wait event, with their oldest ages."""
    keys = ["application", "state", "client", "wait_event_type", "wait_event"]
    if activity.empty:
        return pd.DataFrame(columns=[*keys, "sessions", "oldest_xact_s", "oldest_query_s", "oldest_state_s"])
    return (
        activity.fillna({k: "" for k in keys})
        .groupby(keys, as_index=False)
        .agg(
            sessions=("pid", "count"),
            oldest_xact_s=("xact_age_s", "max"),
            oldest_query_s=("query_age_s", "max"),
            oldest_state_s=("state_age_s", "max"),
        )
        .sort_values("sessions", ascending=False, ignore_index=True)
    )


TICK_SQL = f"""{MARKER}
SELECT COALESCE(NULLIF(application_name, ''), '(unnamed)') AS application, COALESCE(state, '') AS state,
       count(*)::int AS sessions
FROM pg_stat_activity
WHERE {CLIENT_SESSIONS}
GROUP BY 1, 2
"""


async def connections_tick(ctx: Context) -> list[dict[str, object]]:
    """One sampler tick: sessions per application and state (one statement).

    A tick that finds no session besides the lab's is still a row (no application, 0 sessions): without it,
    a window with one failed tick would read as a server that never answered again.
    """
    frame = await ctx.query(TICK_SQL)
    return frame.to_dict("records") or [{"sessions": 0}]
