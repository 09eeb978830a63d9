"""Who waits for whom: every waiting lock and the blocking graph of ``pg_blocking_pids()``, as a tree.

The root blockers (sessions that block others and wait for nobody) come first, each followed by the sessions
queued behind it, depth first. A waiter with several blockers lists them all in ``blocked_by`` and appears under
every root it waits for. Lock waits are timed from ``pg_locks.waitstart`` (PostgreSQL 14+).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab.areas.db.activity import MARKER, QUERY_CHARS
from bsnexus_lab.clients import APPLICATION_NAME

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

LOCKS_SQL = f"""{MARKER}
WITH waiting AS (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by
    FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()
      AND application_name IS DISTINCT FROM '{APPLICATION_NAME}'
), involved AS (
    SELECT pid FROM waiting UNION SELECT unnest(blocked_by) FROM waiting
)
SELECT a.pid, a.application_name AS application, a.usename AS user, host(a.client_addr) AS client, a.state,
       COALESCE(w.blocked_by, '{{}}') AS blocked_by,
       extract(epoch FROM now() - a.xact_start) AS xact_age_s,
       extract(epoch FROM now() - a.state_change) AS state_age_s,
       extract(epoch FROM now() - l.waitstart) AS wait_s,
       l.lock, left(a.query, {QUERY_CHARS}) AS query
FROM involved i
JOIN pg_stat_activity a ON a.pid = i.pid
LEFT JOIN waiting w ON w.pid = i.pid
LEFT JOIN LATERAL (
    SELECT min(waitstart) AS waitstart,
           string_agg(DISTINCT concat_ws(' ', mode, 'on', locktype, relation::regclass::text), ', ') AS lock
    FROM pg_locks WHERE pid = a.pid AND NOT granted
) l ON true
"""
LOCK_COLUMNS = [
    "root",
    "pid",
    "depth",
    "parent",
    "blocked_by",
    "application",
    "user",
    "client",
    "state",
    "xact_age_s",
    "state_age_s",
    "wait_s",
    "lock",
    "query",
]


async def locks(ctx: Context) -> pd.DataFrame:
    """The blocking tree: one row per (root blocker, session behind it), root blockers first."""
    return blocking_tree((await ctx.query(LOCKS_SQL)).to_dict("records"))


def blocking_tree(sessions: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Order sessions (each with ``pid`` and ``blocked_by``) as trees under their root blockers.

    A root waits for nobody; in a deadlock cycle (until PostgreSQL's detector breaks it) every member waits,
    so the cycle's oldest transaction stands in as its root.
    """
    by_pid = {int(s["pid"]): s | {"blocked_by": sorted(int(p) for p in s.get("blocked_by") or [])} for s in sessions}
    waiters: dict[int, list[int]] = {pid: [] for pid in by_pid}
    for pid, session in by_pid.items():
        for blocker in session["blocked_by"]:
            waiters.setdefault(blocker, []).append(pid)
    roots = [pid for pid, s in by_pid.items() if not s["blocked_by"] and waiters[pid]]
    covered = _reachable(roots, waiters)
    for pid in sorted(set(by_pid) - covered, key=lambda p: -(by_pid[p].get("xact_age_s") or 0)):
        if pid not in covered:  # a cycle: nobody outside it blocks it
            roots.append(pid)
            covered |= _reachable([pid], waiters)
    roots.sort(key=lambda p: (-len(_reachable([p], waiters)), -(by_pid[p].get("xact_age_s") or 0)))
    rows: list[dict[str, Any]] = []
    for root in roots:
        stack: list[tuple[int, int, int | None]] = [(root, 0, None)]
        seen: set[int] = set()
        while stack:
            pid, depth, parent = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            rows.append(
                by_pid.get(pid, {"pid": pid, "blocked_by": []}) | {"root": root, "depth": depth, "parent": parent}
            )
            stack.extend((w, depth + 1, pid) for w in sorted(waiters.get(pid, []), reverse=True))
    return pd.DataFrame(rows, columns=LOCK_COLUMNS).astype(
        {"root": "int64", "pid": "int64", "depth": "int64", "parent": "Int64"}
    )


def _reachable(starts: Iterable[int], waiters: dict[int, list[int]]) -> set[int]:
    seen: set[int] = set()
    stack = list(starts)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(waiters.get(pid, []))
    return seen
