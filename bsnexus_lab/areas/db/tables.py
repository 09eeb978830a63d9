"""Table and index health: sizes, sequential scans, dead rows, vacuum and analyze times, unused, duplicate and
invalid indexes, cache hit ratios, and transaction-ID wraparound age per database.

Bounded by design: the largest ``limit`` tables and indexes of the current database (statistics views only,
no table is read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bsnexus_lab.areas.db.activity import MARKER

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

TABLES_SQL = f"""{MARKER}
SELECT s.schemaname AS schema, s.relname AS table, pg_total_relation_size(s.relid) AS total_bytes,
       pg_relation_size(s.relid) AS table_bytes, pg_indexes_size(s.relid) AS index_bytes,
       s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
       s.n_dead_tup::float / NULLIF(s.n_live_tup + s.n_dead_tup, 0) AS dead_ratio,
       s.seq_scan, s.seq_tup_read, COALESCE(s.idx_scan, 0) AS idx_scan,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       io.heap_blks_hit::float / NULLIF(io.heap_blks_hit + io.heap_blks_read, 0) AS cache_hit_ratio
FROM pg_stat_user_tables s
JOIN pg_statio_user_tables io ON io.relid = s.relid
ORDER BY pg_total_relation_size(s.relid) DESC
LIMIT :limit
"""
INDEXES_SQL = f"""{MARKER}
SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index,
       pg_relation_size(s.indexrelid) AS bytes, s.idx_scan, i.indisunique AS is_unique,
       i.indisprimary AS is_primary, i.indisvalid AS is_valid,
       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid) AS backs_constraint,
       i.indrelid::text || ':' || i.indkey::text || ':' || i.indclass::text || ':'
         || COALESCE(pg_get_expr(i.indexprs, i.indrelid), '') || ':' || COALESCE(pg_get_expr(i.indpred, i.indrelid), '')
         AS signature,
       pg_get_indexdef(s.indexrelid) AS definition
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
ORDER BY pg_relation_size(s.indexrelid) DESC
LIMIT :limit
"""
DATABASES_SQL = f"""{MARKER}
SELECT d.datname AS database, age(d.datfrozenxid)::bigint AS xid_age,
       current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
       age(d.datfrozenxid)::float / 2147483647 AS wraparound_ratio,
       s.blks_hit::float / NULLIF(s.blks_hit + s.blks_read, 0) AS cache_hit_ratio,
       s.blks_hit + s.blks_read AS blocks, d.datname = current_database() AS current
FROM pg_database d
LEFT JOIN pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn
ORDER BY age(d.datfrozenxid) DESC
"""


async def tables(ctx: Context, limit: int = 200) -> pd.DataFrame:
    """The largest tables with their scans, dead rows, last (auto)vacuum/analyze and cache hit ratio."""
    return await ctx.query(TABLES_SQL, limit=limit)


async def indexes(ctx: Context, limit: int = 500) -> pd.DataFrame:
    """The largest indexes with scans, validity, and ``duplicate_of``: another index on the same key."""
    frame = await ctx.query(INDEXES_SQL, limit=limit)
    first = frame.sort_values(["is_primary", "is_unique", "bytes"], ascending=False).drop_duplicates("signature")
    keeper = dict(zip(first["signature"], first["index"], strict=True))
    frame["duplicate_of"] = [
        keeper[sig] if keeper[sig] != name else None
        for sig, name in zip(frame["signature"], frame["index"], strict=True)
    ]
    return frame.drop(columns="signature")


async def databases(ctx: Context) -> pd.DataFrame:
    """Every database's transaction-ID age (wraparound) and cache hit ratio."""
    return await ctx.query(DATABASES_SQL)
