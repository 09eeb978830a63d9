"""BSNexus's own tables, read for evidence: which tasks a stuck consumer holds, and what they block.

A pending entry carries its ``task_id``; joining it to ``tasks``, ``projects`` and ``workers`` shows the
damage: tasks stuck in ``queued``, projects whose queueing waits for them, a worker row whose heartbeat
stopped. When PostgreSQL is not configured or down, the Redis half still comes back (the health probe
reports the outage).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab import streams
from bsnexus_lab.errors import LabError

if TYPE_CHECKING:
    from bsnexus_lab.lab import Lab

# Evidence, not inventory: at most this many held entries per consumer are traced to their tasks.
HELD_PER_CONSUMER = 100
HELD_COLUMNS = [
    "stream",
    "group",
    "consumer",
    "entry_id",
    "task_id",
    "task_status",
    "task_title",
    "project_id",
    "project_name",
    "project_status",
    "project_waiting_tasks",
    "worker_status",
    "worker_last_heartbeat",
]

TASKS_SQL = """
SELECT t.id::text AS task_id, t.status::text AS task_status, t.title AS task_title, p.id::text AS project_id,
       p.name AS project_name, p.status::text AS project_status,
       (SELECT count(*) FROM tasks w WHERE w.project_id = p.id AND w.status IN ('ready', 'waiting'))
           AS project_waiting_tasks
FROM tasks t JOIN projects p ON p.id = t.project_id
WHERE t.id = ANY(CAST(:ids AS uuid[]))
"""
WORKERS_SQL = """
SELECT id::text AS consumer, status::text AS worker_status, last_heartbeat AS worker_last_heartbeat
FROM workers WHERE id = ANY(CAST(:ids AS uuid[]))
"""


def _uuids(values: Any) -> list[str]:
    found = []
    for value in values:
        try:
            found.append(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    return sorted(set(found))


async def _select(lab: Lab, sql: str, ids: list[str]) -> pd.DataFrame | None:
    import asyncpg
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    if not ids or lab.target.database_url is None:
        return None
    try:
        async with lab._postgres().connect() as conn:
            result = await conn.execute(text(sql), {"ids": ids})
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    except (LabError, OSError, SQLAlchemyError, asyncpg.PostgresError):
        return None  # PostgreSQL down or unusable: the health probe reports it; the evidence stays Redis-only


async def held_tasks(lab: Lab, consumers: pd.DataFrame) -> pd.DataFrame:
    """One row per entry held by a consumer whose worker key is gone, traced to its task and project."""
    suspects = consumers[(consumers["pending"] > 0) & consumers["registered"].eq(False).fillna(False)]
    entries = []
    for row in suspects.itertuples():
        held = await streams.pending(lab, row.stream, row.group, consumer=row.consumer, limit=HELD_PER_CONSUMER)
        entries.append(held)
    if not entries:
        return pd.DataFrame(columns=HELD_COLUMNS)
    held = pd.concat(entries, ignore_index=True).rename(columns={"id": "entry_id"})
    bodies = await streams.bodies(lab, held.rename(columns={"entry_id": "id"}))
    task_of = dict(zip(bodies["id"], bodies["task_id"] if "task_id" in bodies else [None] * len(bodies), strict=True))
    held["task_id"] = held["entry_id"].map(task_of)
    tasks = await _select(lab, TASKS_SQL, _uuids(held["task_id"].dropna()))
    workers = await _select(lab, WORKERS_SQL, _uuids(held["consumer"]))
    if tasks is not None:
        held = held.merge(tasks, on="task_id", how="left")
    if workers is not None:
        held = held.merge(workers, on="consumer", how="left")
    return held.reindex(columns=HELD_COLUMNS)
