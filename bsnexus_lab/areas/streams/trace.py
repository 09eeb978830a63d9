"""The streams' part in tracing one task: an entry id names its task (NAME); the task's entries in the five
streams, each one's state in its group, and the consumers involved (FIND).

Entries are found by time, never by reading a stream whole: each stream is read with ``XRANGE ... COUNT`` in
pages from ``trace_margin_s`` before each of the row's times (entry ids carry Redis's clock, the row
PostgreSQL's: the margin covers the two), and from just before the row's last change up to now (a result
waits there while the row stays ``queued``), at most ``trace_scan_limit`` entries per stream. An entry's
state in its group is one ``XPENDING <id> <id>`` per group: pending (on whom, for how long, how many
deliveries), waiting (never delivered, behind how many), or acknowledged.

Where the task stands in its normal life (``stage``) is told from the row's status and those states, as
BSNexus's own bookkeeping has it: a task executing on a worker is ``queued`` with its entry pending on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from redis.exceptions import ResponseError

from bsnexus_lab.areas.streams import probes
from bsnexus_lab.areas.streams.held import WORKERS_SQL, held_tasks, uuids
from bsnexus_lab.areas.streams.probes import PENDING_COLUMNS, body_row
from bsnexus_lab.context import Context
from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Unavailable
from bsnexus_lab.resp import as_dict, entry_id, text
from bsnexus_lab.text import duration, plural
from bsnexus_lab.timeline import Part, Subject, events

MAX_SEQ = 2**64 - 1  # the highest sequence number of an entry id: a window's end covers its whole millisecond
ENTRY = re.compile(r"(?:(?P<stream>.+)/)?(?P<id>\d+-\d+)")


@dataclass(frozen=True)
class Found:
    """One entry that names the task, and its state in each group of its stream."""

    stream: str
    id: str
    body: dict[str, Any]
    states: tuple[dict[str, Any], ...]  # {"group", "state": pending|waiting|acknowledged, ...}

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(entry_id(self.id)[0] / 1000, UTC)


async def name(ctx: Context, subject: Subject) -> Part:
    """An entry id (``1733212345678-0`` or ``tasks:queue/1733212345678-0``) -> the task its body names."""
    match = ENTRY.fullmatch(subject.query.strip())
    if not match:
        return Part()
    wanted = [subject.stream or match["stream"]] if (subject.stream or match["stream"]) else list(ctx.target.streams)
    redis = ctx.redis()
    try:
        with ctx.redis_errors():
            pipe = redis.pipeline(transaction=False)
            for stream in wanted:
                pipe.execute_command("XRANGE", stream, match["id"], match["id"], "COUNT", 1)
            replies = await pipe.execute(raise_on_error=False)
    except LabError as exc:
        return Part(unavailable=(("redis", Unavailable.from_error(exc)),))
    for stream, reply in zip(wanted, replies, strict=True):
        if reply and not isinstance(reply, ResponseError):
            body = body_row(stream, match["id"], reply[0][1])
            task = body.get("task_id")
            return Part(subject=subject.with_(entries=((stream, match["id"]),), task_id=task if task else None))
    try:  # no body: trimmed while still pending somewhere, which is worth a trace of its own
        held = [f.stream for f in await _states(ctx, [((s, match["id"]), {}) for s in wanted]) if _pending(f)]
    except LabError:
        held = []
    return Part(subject=subject.with_(entries=((held[0], match["id"]),))) if held else Part()


async def find(ctx: Context, subject: Subject) -> Part:
    """The task's (or the worker's) entries, their states, the consumers involved, and the frames the stream
    checks read, restricted to those."""
    if not (subject.task_id or subject.worker_id or subject.entries):
        return Part()
    try:
        if subject.task_id or subject.entries:
            found = await _entries(ctx, subject)
        else:
            found = await _held_by(ctx, subject.worker_id or "")
        return await _part(ctx, subject, found)
    except LabError as exc:
        return Part(unavailable=(("redis", Unavailable.from_error(exc)),))


async def _entries(ctx: Context, subject: Subject) -> list[Found]:
    """Entries naming the task, found around the row's times (and those already named)."""
    bodies: dict[tuple[str, str], dict[str, Any]] = {}
    if subject.task_id:
        for stream in ctx.target.streams:
            budget = ctx.thresholds.trace_scan_limit
            for first, last, command in _ranges(subject, ctx.thresholds.trace_margin_s):
                budget = await _search(ctx, stream, command, (first, last), budget, subject.task_id, bodies)
    for stream, entry in subject.entries:
        if (stream, entry) not in bodies:
            bodies[(stream, entry)] = (await probes.peek(ctx, stream, [entry])).iloc[0].to_dict()
    return await _states(ctx, sorted(bodies.items(), key=lambda kv: entry_id(kv[0][1])))


def _ranges(subject: Subject, margin_s: float) -> list[tuple[str, str, str]]:
    """(from, to, command) to read: windows around the row's times and from its last change up to now; with
    no row, the newest entries, newest first."""
    if not subject.times:
        return [("+", "-", "XREVRANGE")]
    margin, now = timedelta(seconds=margin_s), datetime.now(UTC)
    times = sorted(subject.times)
    windows = _merged([(t - margin, t + margin) for t in times] + [(times[-1] - margin, now + margin)])
    return [(f"{_ms(start)}-0", f"{_ms(end)}-{MAX_SEQ}", "XRANGE") for start, end in windows]


async def _search(
    ctx: Context,
    stream: str,
    command: str,
    span: tuple[str, str],
    budget: int,
    task_id: str,
    bodies: dict[tuple[str, str], dict[str, Any]],
) -> int:
    """Read ``span`` of ``stream`` in pages (at most ``budget`` entries), keeping the bodies that name the task;
    returns what is left of the budget."""
    cursor, stop = span
    needle = task_id.encode()
    redis = ctx.redis()
    while budget > 0:
        count = min(ctx.thresholds.trace_page, budget)
        with ctx.redis_errors():
            try:
                page = await redis.execute_command(command, stream, cursor, stop, "COUNT", count)
            except ResponseError:  # not a stream (the keys area reports wrong types)
                return budget
        budget -= len(page)
        for entry, fields in page:  # the raw values first: decoding thousands of bodies to keep one costs seconds
            if any(needle in value for value in _values(fields) if isinstance(value, bytes)):
                row = body_row(stream, text(entry), fields)
                if _names(row, task_id):
                    bodies[(stream, row["id"])] = row
        if len(page) < count:
            break
        cursor = "(" + text(page[-1][0])  # XRANGE moves its start up, XREVRANGE its end down
    return budget


def _values(fields: Any) -> Any:
    """A RESP2 reply's field values (every other item), or a RESP3 map's."""
    return fields.values() if isinstance(fields, dict) else fields[1::2]


def _pending(found: Found) -> bool:
    return any(s["state"] == "pending" for s in found.states)


def _names(row: dict[str, Any], task_id: str) -> bool:
    return any(task_id in str(value) for key, value in row.items() if key not in ("stream", "id", "exists"))


def _ms(moment: datetime) -> int:
    return max(0, int(moment.timestamp() * 1000))


def _merged(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


async def _states(ctx: Context, entries: Sequence[tuple[tuple[str, str], dict[str, Any]]]) -> list[Found]:
    """Each entry's state in every group of its stream: two pipelined round trips."""
    redis = ctx.redis()
    streams = sorted({stream for (stream, _), _ in entries})
    with ctx.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for stream in streams:
            pipe.execute_command("XINFO GROUPS", stream)
        groups = dict(zip(streams, await pipe.execute(raise_on_error=False), strict=True))
    groups = {s: [as_dict(g) for g in reply] if isinstance(reply, list) else [] for s, reply in groups.items()}
    asks = [
        (stream, entry, text(g["name"]), text(g["last-delivered-id"]))
        for (stream, entry), _ in entries
        for g in groups[stream]
    ]
    waits = [entry_id(entry) > entry_id(last) for _, entry, _, last in asks]
    # An entry after the group's last-delivered id was never delivered, so it cannot be pending: it is asked how
    # many wait ahead of it, every other entry whether it is pending.
    with ctx.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for (stream, entry, group, last), waiting in zip(asks, waits, strict=True):
            if waiting:
                pipe.execute_command("XRANGE", stream, "(" + last, "(" + entry, "COUNT", probes.LAG_SCAN_LIMIT)
            else:
                pipe.execute_command("XPENDING", stream, group, entry, entry, 1)
        replies = await pipe.execute()
    states: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (stream, entry, group, _), waiting, reply in zip(asks, waits, replies, strict=True):
        if waiting:
            state = {"state": "waiting", "ahead": len(reply), "ahead_exact": len(reply) < probes.LAG_SCAN_LIMIT}
        elif reply:
            _, consumer, idle, deliveries = reply[0]
            state = {
                "state": "pending",
                "consumer": text(consumer),
                "idle_ms": int(idle),
                "deliveries": int(deliveries),
            }
        else:
            state = {"state": "acknowledged"}
        states.setdefault((stream, entry), []).append({"group": group, **state})
    return [Found(stream, entry, body, tuple(states.get((stream, entry), ()))) for (stream, entry), body in entries]


async def _held_by(ctx: Context, worker: str) -> list[Found]:
    """A worker's trace: the entries it holds, in every group (at most a page each)."""
    frame = await probes.consumers(ctx)
    mine = frame[frame["consumer"] == worker]
    held = [await probes.pending(ctx, r.stream, r.group, consumer=worker, limit=100) for r in mine.itertuples()]
    held = [h for h in held if not h.empty]
    if not held:
        return []
    rows = pd.concat(held, ignore_index=True)
    found = await probes.bodies(ctx, rows)
    bodies = {(r["stream"], r["id"]): r for r in found.to_dict("records")}
    return await _states(ctx, [((r.stream, r.id), bodies.get((r.stream, r.id), {})) for r in rows.itertuples()])


async def _part(ctx: Context, subject: Subject, found: list[Found]) -> Part:
    names = ctx.target.conventions
    involved = {(f.stream, s["group"], s["consumer"]) for f in found for s in f.states if s["state"] == "pending"}
    for f in found:  # the reviewer a QA message is meant for, holding it or not
        reviewer = f.body.get(names.reviewer_field)
        if f.stream == names.qa_stream and isinstance(reviewer, str) and reviewer:
            involved.add((f.stream, names.reviewer_group, reviewer))
    # Every reader of a group the task waits in (is anyone reading?), and the consumers involved elsewhere.
    waited = {(f.stream, s["group"]) for f in found for s in f.states if s["state"] == "waiting"}
    groups = sorted({(s, g) for s, g, _ in involved} | waited)
    consumers = pd.concat(
        [await probes.consumers(ctx, [s], g) for s, g in groups] or [pd.DataFrame(columns=probes.CONSUMER_COLUMNS)],
        ignore_index=True,
    )
    keep = [
        (r.stream, r.group) in waited or (r.stream, r.group, r.consumer) in involved for r in consumers.itertuples()
    ]
    consumers = names.stamp(consumers[pd.Series(keep, index=consumers.index, dtype=bool)].reset_index(drop=True))
    held = await held_tasks(ctx, consumers)
    pending = names.stamp(
        pd.DataFrame(
            [
                {"stream": f.stream, "group": s["group"], "id": f.id, "consumer": s["consumer"],
                 "idle_ms": s["idle_ms"], "deliveries": s["deliveries"]}
                for f in found for s in f.states if s["state"] == "pending"
            ],
            columns=PENDING_COLUMNS,
        )
    )  # fmt: skip
    bodies = names.stamp(pd.DataFrame([f.body for f in found]) if found else pd.DataFrame(columns=["stream", "id"]))
    streams = sorted({f.stream for f in found})
    frames: dict[str, Any] = {"streams.consumers": consumers, "streams.held": held, "streams.pending": pending}
    frames["streams.bodies"] = bodies
    if streams:
        frames["streams.summary"] = await probes.summary(ctx, streams)
    registry = {r.consumer: r for r in consumers.itertuples()}
    workers = await _workers(ctx, [c for _, _, c in involved])
    subject = subject.with_(facts={"worker_names": {**subject.facts.get("worker_names", {}), **workers}})
    stage = _stage(subject, found, registry, ctx)
    scope = {f"task:{subject.task_id}"} if subject.task_id else set()
    scope |= {f"consumer:{s}/{g}/{c}" for s, g, c in involved}
    for f in found:  # its entries; the group's own story where it waits there, or lost its body there
        for s in f.states:
            if s["state"] == "pending":
                scope.add(f"entry:{f.stream}/{s['group']}/{f.id}")
            if s["state"] == "waiting" or f.body.get("exists") is False:
                scope.add(f"stream:{f.stream}/{s['group']}")
    tasks = sorted({str(f.body["task_id"]) for f in found if isinstance(f.body.get("task_id"), str)})
    facts = {"stage": stage, "entries": len(found)} | ({"tasks": tasks} if subject.worker_id else {})
    if stage and stage.get("waits_on"):
        facts["waits_on"] = stage["waits_on"]
    return Part(
        events=events([_event(f, registry) for f in found] + _registry_events(consumers), "redis"),
        frames=frames,
        scope=frozenset(scope),
        subject=subject.with_(
            entries=tuple((f.stream, f.id) for f in found),
            consumers=tuple(sorted(involved)),
            facts={"waits_on": facts.get("waits_on")},
        ),
        facts=facts,
    )


async def _workers(ctx: Context, consumers: list[str]) -> dict[str, str]:
    """The workers' names (their rows), so a trace says "worker-2", not only a UUID; none without a database."""
    if not ctx.has_database or not (ids := uuids(consumers)):
        return {}
    try:
        rows = await ctx.query(WORKERS_SQL, ids=ids)
    except LabError:
        return {}
    return dict(zip(rows["consumer"], rows["worker_name"], strict=True))


def _who(consumer: str, registry: dict[str, Any]) -> str:
    row = registry.get(consumer)
    if row is None or row.registered is None or pd.isna(row.registered):
        return consumer
    alive = f"key alive, TTL {duration(row.registry_ttl_s)}" if row.registered else "key gone"
    return f"{consumer} ({alive})"


def _event(f: Found, registry: dict[str, Any]) -> dict[str, Any]:
    states = []
    for s in f.states:
        if s["state"] == "pending":
            states.append(
                f"{s['group']}: pending on {_who(s['consumer'], registry)} for {duration(s['idle_ms'] / 1000)}, "
                f"{plural(s['deliveries'], 'delivery', 'deliveries')}"
            )
        elif s["state"] == "waiting":
            states.append(f"{s['group']}: never delivered, {_ahead(s)} ahead of it")
        else:
            states.append(f"{s['group']}: acknowledged")
    if f.body.get("exists") is False:
        states.append("its body is gone (trimmed)")
    detail = "; ".join(states) or _summary(f.body)
    return {"time": f.time, "event": f"{f.stream} {f.id}", "detail": detail}


def _summary(body: dict[str, Any]) -> str:
    """An entry read directly (a board event): its fields, JSON-decoded ones flattened, ids left out."""
    shown: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("stream", "id", "exists", "task_id", "project_id"):
            continue
        shown.update({k: v for k, v in value.items() if k != "task_id"} if isinstance(value, dict) else {key: value})
    return ", ".join(f"{k}={str(v)[:60]}" for k, v in list(shown.items())[:4])


def _ahead(state: dict[str, Any]) -> str:
    count = state["ahead"]
    return plural(count, "entry", "entries") if state["ahead_exact"] else f"over {count} entries"


def _registry_events(consumers: pd.DataFrame) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "time": now,
            "event": f"worker key {r.consumer}",
            "detail": f"alive, TTL {duration(r.registry_ttl_s)}" if r.registered else "gone (expired or evicted)",
        }
        for r in consumers.itertuples()
        if r.registered is not None and not pd.isna(r.registered)
    ]


def _stage(subject: Subject, found: list[Found], registry: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    """Where the task is in its normal life, from its row's status and its entries' states (newest first)."""
    status = subject.facts.get("status")
    names = ctx.target.conventions
    latest: dict[str, Found] = {}
    for f in found:
        latest[f.stream] = f
    queue, qa = latest.get(names.queue_stream), latest.get(names.qa_stream)
    for f in sorted(latest.values(), key=lambda f: entry_id(f.id), reverse=True):
        for s in f.states:
            if s["state"] == "pending" and names.is_orchestrator(s["consumer"]):
                return _said("orchestrator", f"result held by {s['consumer']} for {duration(s['idle_ms'] / 1000)}",
                             s["idle_ms"], waits_on="orchestrator")  # fmt: skip
            if s["state"] == "waiting" and f.stream not in (names.queue_stream, names.qa_stream):
                return _said("orchestrator", f"waiting on {f.stream}/{s['group']} for the orchestrator, {_ahead(s)} "
                             "ahead", _age_ms(f), waits_on="orchestrator")  # fmt: skip
    if status == "review" and qa is not None:
        for s in qa.states:
            if s["state"] == "pending":
                return _said("review", f"in review by {_name(s['consumer'], subject)} for "
                             f"{duration(s['idle_ms'] / 1000)}", s["idle_ms"])  # fmt: skip
            if s["state"] == "waiting":
                return _said("review", f"waiting for its reviewer, {_ahead(s)} ahead", _age_ms(qa))
    if status == "queued" and queue is not None:
        for s in queue.states:
            if s["state"] == "pending":
                alive = registry.get(s["consumer"])
                live = alive is not None and bool(alive.registered)
                return _said("queued", f"executing on worker {_name(s['consumer'], subject)} for "
                             f"{duration(s['idle_ms'] / 1000)}", s["idle_ms"], live=live)  # fmt: skip
            if s["state"] == "waiting":
                return _said("waiting_for_worker", f"waiting for a free worker, {_ahead(s)} ahead", _age_ms(queue))
    return None


def _said(stage: str, text_: str, since_ms: float, **extra: Any) -> dict[str, Any]:
    return {"stage": stage, "text": text_, "since_s": since_ms / 1000, **extra}


def _age_ms(f: Found) -> float:
    return (datetime.now(UTC) - f.time).total_seconds() * 1000


def _name(consumer: str, subject: Subject) -> str:
    named = subject.facts.get("worker_names", {}).get(consumer)
    return f"{named} ({consumer})" if named else consumer
