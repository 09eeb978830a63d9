"""Which statements cost the database most: ``pg_stat_statements`` when it is there, sampling otherwise.

The lab's own statements (they start with :data:`MARKER`) are left out. Without the extension, sampling
``pg_stat_activity`` for a few seconds shows what runs long enough to be caught, which is what matters. EXPLAIN
runs inside the lab's session, whose transaction is always rolled back; ANALYZE (which executes the statement)
only on a Lab opened with ``allow_writes=True`` and when asked.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab.areas.db.activity import ACTIVITY_SQL, MARKER
from bsnexus_lab.errors import ConfigError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

STATEMENTS_SQL = f"""{MARKER}
SELECT s.queryid::text AS queryid, r.rolname AS user, s.calls, s.rows,
       s.total_exec_time AS total_ms, s.mean_exec_time AS mean_ms, s.max_exec_time AS max_ms,
       s.shared_blks_hit + s.shared_blks_read AS blocks, s.shared_blks_read AS blocks_read,
       100.0 * s.total_exec_time / NULLIF(sum(s.total_exec_time) OVER (), 0) AS share_pct, s.query
FROM pg_stat_statements s
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.query NOT LIKE '{MARKER}%'
ORDER BY s.total_exec_time DESC
LIMIT :top
"""
STATEMENT_COLUMNS = [
    "queryid",
    "user",
    "calls",
    "rows",
    "total_ms",
    "mean_ms",
    "max_ms",
    "blocks",
    "blocks_read",
    "share_pct",
    "tables",
    "query",
]
SAMPLED_COLUMNS = ["query", "samples", "sessions", "applications", "longest_s", "tables"]
_PLACEHOLDER = re.compile(r"\$(\d+)")
_RELATION = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(?:ONLY\s+)?((?:\"?\w+\"?\.)?\"?\w+\"?)", re.IGNORECASE)


def tables_named(query: str) -> list[str]:
    """The relations a statement reads or writes, as written after FROM/JOIN/UPDATE/INTO (schema dropped)."""
    names = {m.split(".")[-1].strip('"').lower() for m in _RELATION.findall(query or "")}
    return sorted(names - {"select", "lateral"})


async def statements(ctx: Context, top: int = 20) -> pd.DataFrame:
    """Top statements by total execution time from pg_stat_statements (NotFound when it is not installed)."""
    if not bool((await ctx.query(f"{MARKER} SELECT to_regclass('pg_stat_statements') IS NOT NULL AS ok"))["ok"][0]):
        raise NotFound(
            "pg_stat_statements is not installed in this database",
            hint="add it to shared_preload_libraries and CREATE EXTENSION pg_stat_statements; "
            "lab.db.sampled_statements() samples pg_stat_activity instead",
        )
    frame = await ctx.query(STATEMENTS_SQL, top=top)
    frame["tables"] = frame["query"].map(tables_named)
    return frame.reindex(columns=STATEMENT_COLUMNS)


async def sampled_statements(ctx: Context, window_s: float = 5.0, every_s: float = 0.25) -> pd.DataFrame:
    """Statements seen running in pg_stat_activity over ``window_s`` seconds: a stand-in for pg_stat_statements.

    ``samples`` times ``every_s`` approximates the time a statement kept a session busy during the window.
    """
    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + window_s
    while True:
        frame = await ctx.query(ACTIVITY_SQL)
        seen.extend(frame[frame["state"] == "active"].to_dict("records"))
        if loop.time() + every_s > end:
            break
        await asyncio.sleep(every_s)
    if not seen:
        return pd.DataFrame(columns=SAMPLED_COLUMNS)
    grouped = (
        pd.DataFrame(seen)
        .groupby("query", as_index=False)
        .agg(
            samples=("pid", "count"),
            sessions=("pid", "nunique"),
            applications=("application", lambda a: sorted(set(a))),
            longest_s=("query_age_s", "max"),
        )
    )
    grouped["tables"] = grouped["query"].map(tables_named)
    return grouped.sort_values("samples", ascending=False, ignore_index=True).reindex(columns=SAMPLED_COLUMNS)


async def explain(ctx: Context, sql: str, *, analyze: bool = False, **params: Any) -> dict[str, Any]:
    """The plan of one statement (FORMAT JSON) from the lab's session, whose transaction is rolled back.

    A statement from pg_stat_statements carries ``$1`` placeholders: PostgreSQL 16+ plans it generically;
    on older servers pass the values as ``params`` (written ``:name`` in ``sql``).
    """
    if analyze and not ctx.allow_writes:
        raise PermissionDenied(
            "EXPLAIN ANALYZE executes the statement, and this Lab is read-only",
            hint="open it with allow_writes=True (the transaction is still rolled back)",
        )
    options = ["FORMAT JSON"] + (["ANALYZE", "BUFFERS"] if analyze else [])
    placeholders = sorted(set(_PLACEHOLDER.findall(sql)), key=int)
    if placeholders:
        version = int((await ctx.query(f"{MARKER} SELECT current_setting('server_version_num')::int AS v"))["v"][0])
        if version < 160000 or analyze:
            raise ConfigError(
                "this statement has $n placeholders, which only a plain EXPLAIN on PostgreSQL 16+ can plan",
                hint="write the values in, or as :name with explain(..., name=value)",
            )
        # GENERIC_PLAN ignores the values bound to $n: bind NULLs (the driver insists on one per placeholder).
        options.append("GENERIC_PLAN")
        sql = _PLACEHOLDER.sub(lambda m: f"(:lab_p{m.group(1)})", sql)
        params = params | {f"lab_p{n}": None for n in placeholders}
    frame = await ctx.query(f"{MARKER} EXPLAIN ({', '.join(options)}) {sql}", **params)
    plan = frame.iloc[0, 0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]
