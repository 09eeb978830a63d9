"""The database's part in tracing one task: its row, history, dependencies, project, workers (ROW), and the
backend's sessions when the task waits on the orchestrator (AROUND).

BSNexus's own bookkeeping is read as it is, not as it reads: while a worker executes a task the row stays
``queued`` with no ``worker_id`` (set only when the orchestrator processes the result), and the worker row's
``current_task_id`` is never filled; who executes a task is the streams area's to say (its pending entry).
Every time comes from PostgreSQL's clock, with ``now()`` read in the same statement, so ages are the server's.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab.areas.db.activity import MARKER, activity
from bsnexus_lab.areas.db.consistency import consistency
from bsnexus_lab.areas.db.locks import locks
from bsnexus_lab.errors import ConfigError, LabError
from bsnexus_lab.findings import Unavailable
from bsnexus_lab.text import duration
from bsnexus_lab.timeline import Part, Subject, events

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

MIN_PREFIX = 4  # hex digits: as git, shorter prefixes name too many rows to be worth a query
_HEX = re.compile(r"[0-9a-f]+")
_ENTRY_ID = re.compile(r"\d+-\d+")  # a stream entry id, all digits: never read as a prefix of a task id

TASK_SQL = f"""{MARKER}
SELECT t.id::text AS task_id, t.title, t.status::text AS status, t.priority::text AS priority,
       t.worker_id::text AS worker_id, t.reviewer_id::text AS reviewer_id, t.retry_count, t.max_retries,
       t.error_message, t.created_at, t.updated_at, t.started_at, t.completed_at,
       p.id::text AS project_id, p.name AS project, p.status::text AS project_status,
       ph.name AS phase, ph.status::text AS phase_status, now() AS db_now
FROM tasks t JOIN projects p ON p.id = t.project_id LEFT JOIN phases ph ON ph.id = t.phase_id
WHERE t.id BETWEEN CAST(:low AS uuid) AND CAST(:high AS uuid)
ORDER BY t.id LIMIT 2
"""
WORKER_ROW_SQL = f"""{MARKER}
SELECT id::text AS worker_id FROM workers
WHERE id BETWEEN CAST(:low AS uuid) AND CAST(:high AS uuid) ORDER BY id LIMIT 2
"""
HISTORY_SQL = f"""{MARKER}
SELECT from_status, to_status, actor, reason, "timestamp" AS time
FROM task_history WHERE task_id = CAST(:id AS uuid) ORDER BY "timestamp" LIMIT :limit
"""
DEPENDENCIES_SQL = f"""{MARKER}
SELECT d.dependency_id::text AS task_id, t.title, t.status::text AS status
FROM task_dependencies d JOIN tasks t ON t.id = d.dependency_id WHERE d.task_id = CAST(:id AS uuid)
"""
# The project's other tasks: the one holding its queue (one task per project at a time) and those behind it.
SIBLINGS_SQL = f"""{MARKER}
SELECT count(*) FILTER (WHERE status IN ('ready', 'waiting')) AS waiting_behind,
       (array_agg(id::text ORDER BY updated_at) FILTER (WHERE status IN ('queued', 'in_progress', 'review')))[1]
           AS holding_task,
       (array_agg(status::text ORDER BY updated_at) FILTER (WHERE status IN ('queued', 'in_progress', 'review')))[1]
           AS holding_status
FROM tasks WHERE project_id = CAST(:project AS uuid) AND id <> CAST(:id AS uuid)
"""
WORKERS_SQL = f"""{MARKER}
SELECT id::text AS worker_id, name, status::text AS status, last_heartbeat,
       extract(epoch FROM now() - last_heartbeat)::float8 AS heartbeat_age_s
FROM workers WHERE id = ANY(CAST(:ids AS uuid[]))
"""
# How long each status usually lasts: from entering it to leaving it, over the newest transitions.
NORMS_SQL = f"""{MARKER}
WITH recent AS (
    SELECT task_id, to_status, "timestamp" FROM task_history ORDER BY "timestamp" DESC LIMIT :limit
), spans AS (
    SELECT to_status, extract(epoch FROM lead("timestamp") OVER (PARTITION BY task_id ORDER BY "timestamp")
           - "timestamp")::float8 AS seconds
    FROM recent
)
SELECT to_status AS status, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90_s, count(*) AS tasks
FROM spans WHERE seconds IS NOT NULL GROUP BY to_status
"""
SESSION_EVENTS = ("idle in transaction", "idle in transaction (aborted)")


def id_range(text: str) -> tuple[str, str] | None:
    """The UUIDs a full id or a hex prefix of one spans (dashes ignored), or None when it is neither."""
    digits = text.strip().lower().replace("-", "")
    if _ENTRY_ID.fullmatch(text.strip()) or not (MIN_PREFIX <= len(digits) <= 32 and _HEX.fullmatch(digits)):
        return None
    return str(uuid.UUID(digits.ljust(32, "0"))), str(uuid.UUID(digits.ljust(32, "f")))


def _one(rows: pd.DataFrame, what: str, query: str) -> dict[str, Any] | None:
    if len(rows) > 1:
        ids = ", ".join(rows.iloc[:, 0])
        raise ConfigError(f"{query!r} names more than one {what} ({ids})", hint="give more of the id")
    return rows.iloc[0].to_dict() if len(rows) else None


async def resolve(ctx: Context, subject: Subject) -> Part:
    """The task row (or the worker row) the query names, with its history, dependencies, project and norms."""
    span = id_range(subject.task_id or subject.query)
    if not ctx.has_database:
        missing = (("database", Unavailable("no database configured for this target")),)
        return Part(unavailable=missing, subject=_unrowed(subject, *span) if span else None)
    if span is None:
        return Part()
    low, high = span
    try:
        task = _one(await ctx.query(TASK_SQL, low=low, high=high), "task", subject.query)
        if task is None:
            worker = _one(await ctx.query(WORKER_ROW_SQL, low=low, high=high), "worker", subject.query)
            if worker:
                return Part(subject=subject.with_(worker_id=worker["worker_id"]))
            return Part(subject=_unrowed(subject, low, high))
        return await _task_part(ctx, subject, task)
    except ConfigError:
        raise
    except LabError as exc:
        return Part(unavailable=(("database", Unavailable.from_error(exc)),))


def _unrowed(subject: Subject, low: str, high: str) -> Subject:
    """A full task id that no row holds may still be in the streams (a synthetic or deleted task): the stores
    are searched for it, newest entries first, with no row times to go by."""
    return subject.with_(task_id=low) if low == high else subject


async def _task_part(ctx: Context, subject: Subject, task: dict[str, Any]) -> Part:
    limits = ctx.thresholds
    task_id = task["task_id"]
    history = await ctx.query(HISTORY_SQL, id=task_id, limit=limits.trace_history_rows)
    dependencies = await ctx.query(DEPENDENCIES_SQL, id=task_id)
    siblings = (await ctx.query(SIBLINGS_SQL, id=task_id, project=task["project_id"])).iloc[0].to_dict()
    people = [w for w in (task["worker_id"], task["reviewer_id"]) if isinstance(w, str)]
    workers = await ctx.query(WORKERS_SQL, ids=people) if people else pd.DataFrame()
    norms = await ctx.query(NORMS_SQL, limit=limits.trace_norm_rows)
    rows: list[dict[str, Any]] = [{"time": task["created_at"], "event": "created", "detail": _title(task)}]
    for h in history.itertuples():
        by = f" by {h.actor}" if isinstance(h.actor, str) and h.actor else ""
        why = f": {h.reason}" if isinstance(h.reason, str) and h.reason else ""
        rows.append({"time": h.time, "event": f"{h.from_status or '-'} -> {h.to_status}", "detail": f"{by[1:]}{why}"})
    for name in ("started_at", "completed_at"):
        if pd.notna(task[name]):
            rows.append({"time": task[name], "event": name.removesuffix("_at"), "detail": ""})
    rows.append({"time": task["updated_at"], "event": f"row now {task['status']}", "detail": _row_detail(task)})
    for w in workers.itertuples():
        if pd.notna(w.last_heartbeat):
            rows.append(
                {
                    "time": w.last_heartbeat,
                    "event": f"worker {w.name} heartbeat",
                    "detail": f"{w.worker_id} ({w.status}), {duration(w.heartbeat_age_s)} ago",
                }
            )
    times = [
        t for t in (task["created_at"], task["updated_at"], task["started_at"], task["completed_at"]) if pd.notna(t)
    ]
    facts = {
        **{k: task[k] for k in ("title", "status", "priority", "project", "project_id", "phase", "retry_count")},
        "worker_id": task["worker_id"],
        "reviewer_id": task["reviewer_id"],
        "age_s": (task["db_now"] - task["updated_at"]).total_seconds(),
        "status_since_s": _status_age(history, task),
        "dependencies": dependencies.to_dict("records"),
        "waiting_behind": int(siblings["waiting_behind"] or 0),
        "holding_task": siblings["holding_task"],
        "holding_status": siblings["holding_status"],
        "worker_names": dict(zip(workers.get("worker_id", []), workers.get("name", []), strict=True)),
        "norms": {
            r.status: {"median_s": r.median_s, "p90_s": r.p90_s, "tasks": int(r.tasks)} for r in norms.itertuples()
        },
    }
    found = subject.with_(task_id=task_id, times=tuple(pd.Timestamp(t).to_pydatetime() for t in times), facts=facts)
    found = found.with_(times=tuple(pd.Timestamp(t).to_pydatetime() for t in history["time"]))
    return Part(events=events(rows, "postgres"), scope=frozenset({f"task:{task_id}"}), subject=found)


def _title(task: dict[str, Any]) -> str:
    phase = f", {task['phase']}" if isinstance(task["phase"], str) else ""
    return f"{task['title']!r} ({task['priority']}) in {task['project']}{phase}"


def _row_detail(task: dict[str, Any]) -> str:
    parts = [f"{k} {task[k]}" for k in ("worker_id", "reviewer_id") if isinstance(task[k], str)]
    if task["retry_count"]:
        parts.append(f"retry {task['retry_count']} of {task['max_retries']}")
    if isinstance(task["error_message"], str) and task["error_message"]:
        parts.append(f"error: {task['error_message'][:200]}")
    if parts or task["status"] != "queued":
        return ", ".join(parts)
    return "no worker_id yet (set when the orchestrator processes the result)"


def _status_age(history: pd.DataFrame, task: dict[str, Any]) -> float:
    """Seconds in the current status: since the last transition into it, else since the row last changed."""
    into = history[history["to_status"] == task["status"]]
    since = into["time"].iloc[-1] if len(into) else task["updated_at"]
    return float((task["db_now"] - since).total_seconds())


async def around(ctx: Context, subject: Subject) -> Part:
    """Whether the task's row and its stream entries agree (the consistency probe, kept to this task), and the
    backend's sessions and what they wait on when the task waits on the orchestrator: a result handler stuck on
    a lock or an open transaction shows there (and in the blocking tree the db checks read)."""
    if not subject.task_id or not ctx.has_database:
        return Part()
    limit = ctx.thresholds.trace_consistency_limit
    try:
        rows = await consistency(ctx, limit)
    except LabError as exc:
        return Part(unavailable=(("row against streams", Unavailable.from_error(exc)),))
    mine = rows[rows["task_id"].eq(subject.task_id)].reset_index(drop=True)
    queue = ctx.target.conventions.queue_stream
    unverified = (
        subject.facts.get("status") == "queued"
        and rows["fault"].eq("unverified").any()
        and not any(stream == queue for stream, _ in subject.entries)
    )
    why = Unavailable(
        f"{queue} holds more than {limit:,} entries past its last delivery, or pending entries without a body",
        remedy="raise thresholds.db.trace_consistency_limit for a deeper look",
    )
    agree = Part(
        frames={"db.consistency": mine}, unavailable=(("whether it was published", why),) if unverified else ()
    )
    if subject.facts.get("waits_on") != "orchestrator":
        return agree
    try:
        sessions = await activity(ctx)
        tree = await locks(ctx)
    except LabError as exc:
        return Part(unavailable=(("backend sessions", Unavailable.from_error(exc)),))
    waiting = sessions[sessions["wait_event_type"].eq("Lock") | sessions["state"].isin(SESSION_EVENTS)]
    rows = [
        {
            "time": pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=float(s.state_age_s or 0)),
            "event": f"session {s.pid} {s.state}"
            + (f", waits on {s.wait_event}" if s.wait_event_type == "Lock" else ""),
            "detail": f"{s.application or '-'}: {s.query}",
        }
        for s in waiting.itertuples()
    ]
    scope = frozenset(f"pg:pid:{p}" for p in waiting["pid"])
    frames = {**agree.frames, "db.activity": sessions, "db.locks": tree}
    return Part(events=events(rows, "postgres"), frames=frames, scope=scope, unavailable=agree.unavailable)
