"""Held tasks: which BSNexus tasks the entries of a consumer that lost its registry key stand for, and what
they block.

A pending entry carries its ``task_id``; joining it to ``tasks``, ``projects`` and ``workers`` shows the
damage: tasks stuck in ``queued``, projects whose queueing waits for them, a worker row whose heartbeat
stopped (``worker_heartbeat_age_s``: its age by PostgreSQL's clock, not the lab's). When PostgreSQL is not
configured or cannot answer, the Redis half still comes back and the frame says why the rest is missing
(``frame.attrs["unavailable"]``), so the check can say so instead of going quiet.
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd

from bsnexus_lab.areas.streams import probes
from bsnexus_lab.context import Context
from bsnexus_lab.errors import LabError

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
    "worker_name",
    "worker_status",
    "worker_last_heartbeat",
    "worker_heartbeat_age_s",
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
SELECT id::text AS consumer, name AS worker_name, status::text AS worker_status,
       last_heartbeat AS worker_last_heartbeat,
       extract(epoch FROM now() - last_heartbeat)::float8 AS worker_heartbeat_age_s
FROM workers WHERE id = ANY(CAST(:ids AS uuid[]))
"""


def uuids(values: Any) -> list[str]:
    found = []
    for value in values:
        try:
            found.append(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    return sorted(set(found))


async def held_tasks(ctx: Context, consumers: pd.DataFrame) -> pd.DataFrame:
    """One row per entry held by a consumer whose worker key is gone, traced to its task and project."""
    suspects = consumers[(consumers["pending"] > 0) & consumers["registered"].eq(False).fillna(False)]
    entries = []
    for row in suspects.itertuples():
        held = await probes.pending(ctx, row.stream, row.group, consumer=row.consumer, limit=HELD_PER_CONSUMER)
        entries.append(held)
    if not entries:
        return pd.DataFrame(columns=HELD_COLUMNS)
    held = pd.concat(entries, ignore_index=True).rename(columns={"id": "entry_id"})
    bodies = await probes.bodies(ctx, held.rename(columns={"entry_id": "id"}))
    task_of = dict(zip(bodies["id"], bodies["task_id"] if "task_id" in bodies else [None] * len(bodies), strict=True))
    held["task_id"] = held["entry_id"].map(task_of)
    unavailable = None
    if not ctx.has_database:
        unavailable = "no database configured for this target"
    else:
        try:
            if task_ids := uuids(held["task_id"].dropna()):
                held = held.merge(await ctx.query(TASKS_SQL, ids=task_ids), on="task_id", how="left")
            if worker_ids := uuids(held["consumer"]):
                held = held.merge(await ctx.query(WORKERS_SQL, ids=worker_ids), on="consumer", how="left")
        except LabError as exc:
            unavailable = str(exc)
    held = held.reindex(columns=HELD_COLUMNS)
    if unavailable:
        held.attrs["unavailable"] = unavailable
    return held
