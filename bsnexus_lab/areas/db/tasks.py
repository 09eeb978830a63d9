"""BSNexus's own rows: tasks by status and age, the task holding each project's queue, and the workers.

Queueing is one task per project: while a task of a project is ``queued``, ``in_progress`` or ``review``, no
other is queued. Age alone proves nothing (a task stays ``queued`` while a worker runs it for minutes); the
consistency probe judges each one by its stream entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bsnexus_lab.areas.db.activity import MARKER
from bsnexus_lab.errors import TargetUnreachable

if TYPE_CHECKING:
    from bsnexus_lab.context import Context


STATUS_SQL = f"""{MARKER}
SELECT status::text AS status, count(*) AS tasks,
       extract(epoch FROM now() - min(updated_at)) AS oldest_s,
       extract(epoch FROM now() - max(updated_at)) AS newest_s
FROM tasks GROUP BY status ORDER BY count(*) DESC
"""
ACTIVE_SQL = f"""{MARKER}
SELECT t.id::text AS task_id, t.status::text AS status, t.title, t.project_id::text AS project_id,
       p.name AS project, p.status::text AS project_status, t.worker_id::text AS worker_id,
       t.reviewer_id::text AS reviewer_id, extract(epoch FROM now() - t.updated_at) AS age_s,
       (SELECT count(*) FROM tasks w WHERE w.project_id = t.project_id AND w.status IN ('ready', 'waiting'))
           AS project_waiting_tasks
FROM tasks t JOIN projects p ON p.id = t.project_id
WHERE t.status IN ('queued', 'in_progress', 'review')
ORDER BY t.updated_at
LIMIT :limit
"""
WORKERS_SQL = f"""{MARKER}
SELECT id::text AS worker_id, name, status::text AS status, current_task_id::text AS current_task_id,
       extract(epoch FROM now() - last_heartbeat) AS heartbeat_age_s
FROM workers ORDER BY last_heartbeat NULLS FIRST LIMIT :limit
"""


async def tasks(ctx: Context) -> pd.DataFrame:
    """Tasks by status, with the age of the oldest and newest change in each."""
    return await ctx.query(STATUS_SQL)


async def active_tasks(ctx: Context, limit: int = 1000) -> pd.DataFrame:
    """Tasks in queued / in_progress / review, oldest first: each one holds its project's queue."""
    return await ctx.query(ACTIVE_SQL, limit=limit)


async def workers(ctx: Context, limit: int = 1000) -> pd.DataFrame:
    """The workers table, stalest heartbeat first, with ``registered``: whether its registry key is alive
    (None when Redis cannot be reached: the rows still come back)."""
    frame = await ctx.query(WORKERS_SQL, limit=limit)
    try:
        alive = await registered(ctx, list(frame["worker_id"]))
    except TargetUnreachable:
        alive = {}
    frame["registered"] = frame["worker_id"].map(alive)
    return frame


async def registered(ctx: Context, workers: list[str]) -> dict[str, bool]:
    """Whether each worker's registry key (``worker:{id}``, 90 s TTL renewed by heartbeats) exists."""
    if not workers:
        return {}
    redis = ctx.redis()
    with ctx.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for worker in workers:
            pipe.exists(ctx.target.worker_key.format(consumer=worker))
        return {w: bool(n) for w, n in zip(workers, await pipe.execute(), strict=True)}
