"""PostgreSQL against Redis: tasks whose row and stream entry tell different stories.

- ``lost_publish``: a task ``queued`` with no entry for it in the queue stream (``tasks:queue``: neither pending
  nor waiting);
- ``expired_worker``: a task ``in_progress`` whose worker's registry key expired;
- ``missed_ack``: an entry still pending for a task already ``done``;
- ``misrouted_qa``: a task in ``review`` whose QA entry (``tasks:qa``) is pending on another consumer than its
  ``reviewer_id``;
- ``dead_consumer``: a ``queued`` (or ``review``) task whose entry is pending on a consumer without a registry
  key. The streams area reports that consumer (streams.dead_consumer); the row is kept here as context only;
- ``unverified``: the bounded scan stopped before the end of a stream, or pending entries lost their bodies
  to trimming (streams.lost_messages reports those), so a missing entry proves nothing.

Streams are read with the streams area's public probes (XPENDING pages, XINFO GROUPS, XRANGE with COUNT), at
most ``consistency_scan_limit`` entries per group; the streams, groups and reviewer field are the target's
:class:`~bsnexus_lab.config.Conventions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab.areas import streams
from bsnexus_lab.areas.db.activity import MARKER
from bsnexus_lab.areas.db.tasks import active_tasks
from bsnexus_lab.areas.db.tasks import registered as registry
from bsnexus_lab.errors import NotFound

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

CONSISTENCY_COLUMNS = [
    "fault",
    "task_id",
    "status",
    "project_id",
    "project",
    "stream",
    "entry_id",
    "consumer",
    "expected_consumer",
    "registered",
    "idle_s",
    "deliveries",
    "age_s",
]
STATUS_SQL = f"""{MARKER}
SELECT t.id::text AS task_id, t.status::text AS status, t.project_id::text AS project_id, p.name AS project,
       extract(epoch FROM now() - t.updated_at) AS age_s
FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.id = ANY(CAST(:ids AS uuid[]))
"""


async def _pending(ctx: Context, stream: str, group: str, limit: int) -> pd.DataFrame:
    try:
        return await streams.pending(ctx, stream, group, limit=limit)
    except NotFound:
        return pd.DataFrame(columns=streams.PENDING_COLUMNS)


async def consistency(ctx: Context, limit: int | None = None, active: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per task whose PostgreSQL status and Redis stream state disagree (see the module's faults).

    ``active`` is :func:`~bsnexus_lab.areas.db.tasks.active_tasks` when the caller already read it.
    """
    limit = limit or ctx.thresholds.consistency_scan_limit
    names = ctx.target.conventions
    queue, qa = names.queue_stream, names.qa_stream
    active = await active_tasks(ctx, limit=limit) if active is None else active
    held = pd.concat(
        [await _pending(ctx, queue, names.worker_group, limit), await _pending(ctx, qa, names.reviewer_group, limit)],
        ignore_index=True,
    )
    waiting = await streams.waiting(ctx, queue, names.worker_group, limit)
    nothing = pd.DataFrame(columns=["stream", "id"], dtype=object)  # nothing pending: merge keys of held's type
    body = await streams.bodies(ctx, held[["stream", "id"]]) if not held.empty else nothing
    fields = body.reindex(columns=["stream", "id", "task_id", names.reviewer_field])
    fields = fields.rename(columns={names.reviewer_field: "reviewer_id"})
    held = held.merge(fields, on=["stream", "id"], how="left")
    ids = sorted({str(t) for t in held["task_id"].dropna()} - set(active["task_id"]))
    known = ["task_id", "status", "project_id", "project", "age_s"]
    others = await ctx.query(STATUS_SQL, ids=ids) if ids else pd.DataFrame(columns=known)
    tasks = pd.concat([active[known], others[known]], ignore_index=True).set_index("task_id")
    status = tasks["status"].to_dict()
    in_progress = active[active["status"] == "in_progress"]
    reviewer_of = dict(zip(active["task_id"], active["reviewer_id"], strict=True))
    registered = await registry(ctx, sorted(set(held["consumer"]) | set(in_progress["worker_id"].dropna())))
    rows: list[dict[str, Any]] = []

    def add(fault: str, task_id: str | None, **values: Any) -> None:
        task = tasks.loc[task_id] if task_id in tasks.index else None
        rows.append(
            {
                "fault": fault,
                "task_id": task_id,
                "status": status.get(task_id or ""),
                "project_id": None if task is None else task["project_id"],
                "project": None if task is None else task["project"],
                "age_s": None if task is None else task["age_s"],
            }
            | values
        )

    def entry(row: Any) -> dict[str, Any]:
        return {
            "stream": row.stream,
            "entry_id": row.id,
            "consumer": row.consumer,
            "registered": registered.get(row.consumer),
            "idle_s": row.idle_ms / 1000,
            "deliveries": row.deliveries,
        }

    queue_held = held[held["stream"] == queue]
    for row in held.itertuples():
        state = status.get(str(row.task_id))
        if state == "done":
            add("missed_ack", row.task_id, **entry(row))
        elif registered.get(row.consumer) is False and state in ("queued", "review"):
            add("dead_consumer", row.task_id, **entry(row))
        elif row.stream == qa and state == "review":
            reviewer = next(
                (r for r in (reviewer_of.get(row.task_id), row.reviewer_id) if isinstance(r, str) and r), None
            )
            if reviewer and row.consumer != reviewer:
                add("misrouted_qa", row.task_id, expected_consumer=reviewer, **entry(row))
    for task in in_progress.itertuples():
        if registered.get(task.worker_id) is False:
            add("expired_worker", task.task_id, consumer=task.worker_id, registered=False)
    # A pending entry whose body was trimmed names no task: a queued task missing from the rest proves nothing.
    bodyless = int(queue_held["task_id"].isna().sum())
    complete = len(queue_held) < limit and len(waiting) < limit and not bodyless
    published = set(queue_held["task_id"].dropna()) | set(waiting.get("task_id", pd.Series(dtype=object)).dropna())
    queued = active[active["status"] == "queued"]
    if complete:
        for task in queued.itertuples():
            if task.task_id not in published:
                add("lost_publish", task.task_id, stream=queue)
    elif not queued.empty:
        add("unverified", None, stream=queue, deliveries=None, idle_s=None)
    return pd.DataFrame(rows, columns=CONSISTENCY_COLUMNS)
